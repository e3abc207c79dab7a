package discovery

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// addrRefresh is how long interface addresses are cached: DHCP renewals
// and operators change them, probes arrive thousands of times a second.
const addrRefresh = 2 * time.Second

// iface is a LAN interface the responder serves.
type iface struct {
	name     string
	index    int
	prefixes []netip.Prefix
	read     time.Time
	stats    *ifaceCounters
}

// ifaceTable resolves configured interface names and caches addresses.
type ifaceTable struct {
	names []string // configured; empty: every multicast interface

	mu      sync.Mutex
	byIndex map[int]*iface
	stats   map[string]*ifaceCounters // by name, kept across re-resolution
}

func newIfaceTable(names []string) *ifaceTable {
	return &ifaceTable{names: names, byIndex: map[int]*iface{}, stats: map[string]*ifaceCounters{}}
}

// resolve looks the interfaces up again and returns those new since the
// last call (to join the groups on).
func (t *ifaceTable) resolve() (added []*iface, missing []string) {
	all, err := net.Interfaces()
	if err != nil {
		return nil, t.names
	}
	want := map[string]bool{}
	for _, n := range t.names {
		want[n] = true
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	present := map[int]bool{}
	for _, ni := range all {
		if len(t.names) == 0 {
			if ni.Flags&net.FlagLoopback != 0 || ni.Flags&net.FlagMulticast == 0 || ni.Flags&net.FlagUp == 0 {
				continue
			}
		} else if !want[ni.Name] {
			continue
		}
		delete(want, ni.Name)
		present[ni.Index] = true
		if old, ok := t.byIndex[ni.Index]; ok && old.name == ni.Name {
			continue
		}
		st := t.stats[ni.Name]
		if st == nil {
			st = &ifaceCounters{}
			t.stats[ni.Name] = st
		}
		ifc := &iface{name: ni.Name, index: ni.Index, stats: st}
		t.byIndex[ni.Index] = ifc
		added = append(added, ifc)
	}
	for idx := range t.byIndex {
		if !present[idx] {
			delete(t.byIndex, idx)
		}
	}
	for n := range want {
		missing = append(missing, n)
	}
	slices.Sort(missing)
	return added, missing
}

// lookup returns the served interface with this index, or nil.
func (t *ifaceTable) lookup(index int) *iface {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.byIndex[index]
}

// source picks our address on interface ifc for answering peer: one in the
// same subnet (the client accepts only those, protocols.md §5.6), else for
// a link-local IPv6 client our first routable IPv6 address there.
func (t *ifaceTable) source(ifc *iface, peer netip.Addr, now time.Time) (netip.Addr, error) {
	t.mu.Lock()
	if now.Sub(ifc.read) > addrRefresh {
		t.mu.Unlock()
		prefixes, err := interfacePrefixes(ifc.index)
		t.mu.Lock()
		if err == nil {
			ifc.prefixes, ifc.read = prefixes, now
		}
	}
	prefixes := ifc.prefixes
	t.mu.Unlock()
	return pickSource(prefixes, peer)
}

// pickSource is source's rule on a list of interface prefixes.
func pickSource(prefixes []netip.Prefix, peer netip.Addr) (netip.Addr, error) {
	peer = peer.Unmap()
	for _, p := range prefixes {
		if p.Contains(peer) && !p.Addr().IsLinkLocalUnicast() {
			return p.Addr(), nil
		}
	}
	if peer.Is6() && peer.IsLinkLocalUnicast() {
		for _, p := range prefixes {
			if a := p.Addr(); a.Is6() && !a.IsLinkLocalUnicast() {
				return a, nil
			}
		}
	}
	if peer.Is4() {
		for _, p := range prefixes {
			if p.Addr().Is4() {
				return p.Addr(), nil // a client on a secondary subnet we do not have
			}
		}
	}
	return netip.Addr{}, fmt.Errorf("no address for %s", peer)
}

func interfacePrefixes(index int) ([]netip.Prefix, error) {
	ni, err := net.InterfaceByIndex(index)
	if err != nil {
		return nil, err
	}
	addrs, err := ni.Addrs()
	if err != nil {
		return nil, err
	}
	var out []netip.Prefix
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip, ok := netip.AddrFromSlice(ipn.IP)
		if !ok {
			continue
		}
		ones, _ := ipn.Mask.Size()
		out = append(out, netip.PrefixFrom(ip.Unmap(), ones))
	}
	return out, nil
}

// snapshot returns the counters of every interface ever served.
func (t *ifaceTable) snapshot() []InterfaceStats {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]InterfaceStats, 0, len(t.stats))
	for name, c := range t.stats {
		out = append(out, c.snapshot(name))
	}
	slices.SortFunc(out, func(a, b InterfaceStats) int {
		if a.Interface < b.Interface {
			return -1
		}
		if a.Interface > b.Interface {
			return 1
		}
		return 0
	})
	return out
}
