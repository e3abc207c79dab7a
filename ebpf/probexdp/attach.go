package probexdp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
)

// Mode is how the program is attached to an interface.
type Mode string

// Modes. Auto is a request (native, else generic, else off), never a
// state.
const (
	Native  Mode = "native"
	Generic Mode = "generic"
	Off     Mode = "off"
	Auto    Mode = "auto"
)

// ParseMode reads a configured mode ("" is off).
func ParseMode(s string) (Mode, error) {
	switch m := Mode(s); m {
	case Native, Generic, Off, Auto:
		return m, nil
	case "":
		return Off, nil
	}
	return "", fmt.Errorf("probexdp: unknown XDP mode %q", s)
}

// Attachment is the program on one interface.
type Attachment struct {
	Interface string
	Index     int
	link      link.Link
	Mode      Mode
}

// Attach attaches the program to the interface index: native mode, then
// generic mode for Auto; only the mode asked for otherwise. The error
// joins every mode's failure.
func (p *Program) Attach(name string, index int, mode Mode) (*Attachment, error) {
	var tries []Mode
	switch mode {
	case Auto:
		tries = []Mode{Native, Generic}
	case Native, Generic:
		tries = []Mode{mode}
	default:
		return nil, fmt.Errorf("probexdp: attach to %s: mode %q", name, mode)
	}
	if err := p.bindSlot(name, index); err != nil {
		return nil, err
	}
	var errs []error
	for _, m := range tries {
		flags := link.XDPDriverMode
		if m == Generic {
			flags = link.XDPGenericMode
		}
		l, err := link.AttachXDP(link.XDPOptions{Program: p.objs.OutpostProbe, Interface: index, Flags: flags})
		if err == nil {
			return &Attachment{Interface: name, Index: index, link: l, Mode: m}, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", m, err))
	}
	p.unbindSlot(index)
	return nil, fmt.Errorf("probexdp: attach to %s: %w", name, errors.Join(errs...))
}

// Detach removes the program from the interface.
func (p *Program) Detach(a *Attachment) error {
	p.unbindSlot(a.Index)
	if err := a.link.Close(); err != nil {
		return fmt.Errorf("probexdp: detach from %s: %w", a.Interface, err)
	}
	return nil
}

// InterfaceStatus is the fast path's state on one interface.
type InterfaceStatus struct {
	Interface string `json:"interface"`
	// Mode is native, generic or off (discovery on the socket path only).
	Mode Mode `json:"mode"`
	// Error says why the program is not attached ("" when it is).
	Error    string   `json:"error,omitempty"`
	Counters Counters `json:"counters"`
}

// ManagerConfig configures a Manager.
type ManagerConfig struct {
	// Interfaces to attach to, by name; empty: every interface that is
	// up and multicast-capable, loopback aside (as discovery serves).
	Interfaces []string
	Mode       Mode
	// Unavailable is called once per interface each time it goes from
	// attached (or new) to not attached, with the reason.
	Unavailable func(iface string, err error)
	Logger      *slog.Logger
	// Recheck is how often interfaces are looked at again (default 5 s).
	Recheck time.Duration
}

// Manager keeps the program attached to the configured interfaces:
// attaching to those that appear (a VLAN created, a NIC plugged in, an
// interface recreated under a new index), noting those that go, and
// detaching from all of them when it stops. An interface going down and
// up keeps its attachment (XDP stays on the device).
type Manager struct {
	prog *Program
	cfg  ManagerConfig
	log  *slog.Logger

	mu       sync.Mutex
	attached map[string]*Attachment
	failed   map[string]string // name -> error of the last attempt
	trunks   map[string]string // name -> why it is left alone (a trunk port)
}

// NewManager returns a manager of prog's attachments.
func NewManager(prog *Program, cfg ManagerConfig) *Manager {
	if cfg.Recheck <= 0 {
		cfg.Recheck = 5 * time.Second
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Manager{prog: prog, cfg: cfg, log: log, attached: map[string]*Attachment{}, failed: map[string]string{}, trunks: map[string]string{}}
}

// Run attaches now and keeps the attachments current until ctx ends,
// then detaches from every interface.
func (m *Manager) Run(ctx context.Context) {
	defer m.detachAll()
	tick := time.NewTicker(m.cfg.Recheck)
	defer tick.Stop()
	for {
		m.Reconcile()
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// wanted lists the interfaces to attach to now, by name and index, and
// the trunk ports left alone: an interface that is the parent of a wanted
// VLAN interface. A probe tagged for a VLAN is only attributed with
// certainty by the VLAN's own device (generic XDP there sees it untagged,
// with that device as its ingress); a NIC that strips tags in hardware
// would show it to a program on the parent as untagged traffic of the
// parent's own subnet. The program passes every tagged frame it sees.
func (m *Manager) wanted() (map[string]int, map[string]string) {
	out := map[string]int{}
	all, err := net.Interfaces()
	if err != nil {
		return out, nil
	}
	for _, ni := range all {
		if len(m.cfg.Interfaces) == 0 {
			if ni.Flags&net.FlagLoopback != 0 || ni.Flags&net.FlagMulticast == 0 || ni.Flags&net.FlagUp == 0 {
				continue
			}
		} else if !slices.Contains(m.cfg.Interfaces, ni.Name) {
			continue
		}
		out[ni.Name] = ni.Index
	}
	trunks := leaveTrunks(out, func(idx int) (string, int) {
		l, err := netlink.LinkByIndex(idx)
		if err != nil {
			return "", 0
		}
		return l.Type(), l.Attrs().ParentIndex
	})
	return out, trunks
}

// leaveTrunks removes from ifaces (name -> index) every interface that is
// the parent of a VLAN interface in ifaces, and returns why, by name;
// link reports an interface's kind ("vlan", …) and parent index.
func leaveTrunks(ifaces map[string]int, link func(index int) (kind string, parent int)) map[string]string {
	byIndex := map[int]string{}
	for name, idx := range ifaces {
		byIndex[idx] = name
	}
	vlans := map[string][]string{} // parent -> its VLAN interfaces
	for name, idx := range ifaces {
		if kind, parent := link(idx); kind == "vlan" {
			if p, ok := byIndex[parent]; ok {
				vlans[p] = append(vlans[p], name)
			}
		}
	}
	trunks := map[string]string{}
	for parent, names := range vlans {
		slices.Sort(names)
		delete(ifaces, parent)
		trunks[parent] = "a trunk port: its VLAN interfaces (" + strings.Join(names, ", ") + ") take their probes; its untagged traffic uses the socket path"
	}
	return trunks
}

// Reconcile attaches to the wanted interfaces not attached yet and drops
// attachments whose interface is gone or has a new index.
func (m *Manager) Reconcile() {
	want, trunks := m.wanted()
	m.mu.Lock()
	defer m.mu.Unlock()
	for name, why := range trunks {
		if _, known := m.trunks[name]; !known {
			m.log.Info("xdp: not attached to a trunk port", "interface", name, "reason", why)
		}
	}
	m.trunks = trunks
	for name, a := range m.attached {
		if idx, ok := want[name]; ok && idx == a.Index && linkAlive(a) {
			continue
		}
		if err := m.prog.Detach(a); err != nil {
			m.log.Debug("xdp: detach", "interface", name, "err", err)
		}
		delete(m.attached, name)
		m.log.Info("xdp: interface gone or renumbered; detached", "interface", name, "index", a.Index)
	}
	for name, idx := range want {
		if _, ok := m.attached[name]; ok {
			continue
		}
		a, err := m.prog.Attach(name, idx, m.cfg.Mode)
		if err != nil {
			if _, known := m.failed[name]; !known {
				m.log.Warn("xdp: not attached; discovery uses the socket path on this interface", "interface", name, "err", err)
				if m.cfg.Unavailable != nil {
					m.cfg.Unavailable(name, err)
				}
			}
			m.failed[name] = err.Error()
			continue
		}
		delete(m.failed, name)
		m.attached[name] = a
		m.log.Info("xdp: attached", "interface", name, "index", idx, "mode", a.Mode)
	}
	for name := range m.failed {
		if _, ok := want[name]; !ok {
			delete(m.failed, name) // gone: a new failure is news again
		}
	}
}

// linkAlive reports whether the attachment's link still holds its
// interface (the kernel detaches a link when the interface is deleted).
func linkAlive(a *Attachment) bool {
	info, err := a.link.Info()
	if err != nil {
		return false
	}
	x := info.XDP()
	return x != nil && x.Ifindex != 0
}

func (m *Manager) detachAll() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for name, a := range m.attached {
		if err := m.prog.Detach(a); err != nil {
			m.log.Warn("xdp: detach", "interface", name, "err", err)
		}
		delete(m.attached, name)
	}
}

// Status returns the state of every interface attached or tried, by name.
func (m *Manager) Status() map[string]InterfaceStatus {
	m.mu.Lock()
	out := map[string]InterfaceStatus{}
	for name, a := range m.attached {
		out[name] = InterfaceStatus{Interface: name, Mode: a.Mode}
	}
	for name, e := range m.failed {
		out[name] = InterfaceStatus{Interface: name, Mode: Off, Error: e}
	}
	for name, why := range m.trunks {
		out[name] = InterfaceStatus{Interface: name, Mode: Off, Error: why}
	}
	m.mu.Unlock()
	for name, st := range out {
		if c, err := m.prog.InterfaceCounters(name); err == nil {
			st.Counters = c
			out[name] = st
		}
	}
	return out
}
