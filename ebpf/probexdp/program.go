package probexdp

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// Limits of the program (probe.c).
const (
	// MaxSegmentIDs is the most scope tokens a probe may carry for the
	// fast path to consume it; probes with more pass to the socket path.
	MaxSegmentIDs = 8
	// SegmentIDSize is the length of the segment IDs the maps hold (V1
	// SHA-256 and all V2 content); longer IDs always take the socket path.
	SegmentIDSize = 32
	// MaxInterfaces bounds the interfaces with counters of their own.
	MaxInterfaces = 63

	defaultRingSize = 1 << 19
)

// Flags of the program's settings (probe.c CFG_*).
const (
	flagForward    = 1
	flagHeldSynced = 2
	flagPeerSynced = 4
)

// Options configure a Program.
type Options struct {
	// RatePerSource caps the probes per second the program accepts from
	// one source address (0: no limit); BurstPerSource is the bucket's
	// size (0: twice the rate, as the socket path).
	RatePerSource, BurstPerSource int
	// RingSize is the event ring buffer's size in bytes, a power of two
	// and a multiple of the page size (0: 512 KiB).
	RingSize int
}

// Program is the loaded XDP program with its maps, not attached anywhere
// yet (see Attach and Manager). It is safe for concurrent use.
type Program struct {
	objs xdpObjects

	mu    sync.Mutex
	flags uint32
	rate  xdpConfig
	slots map[string]uint32 // interface name -> counters slot
	free  []uint32
}

// Load raises RLIMIT_MEMLOCK (kernels before 5.11 charge BPF memory to
// it) and loads the program and its maps into the kernel. Nothing is
// attached; until the maps are synchronised every probe is handed to the
// leader.
func Load(opts Options) (*Program, error) {
	// Not cilium/ebpf/rlimit: see the package documentation.
	inf := unix.Rlimit{Cur: unix.RLIM_INFINITY, Max: unix.RLIM_INFINITY}
	_ = unix.Setrlimit(unix.RLIMIT_MEMLOCK, &inf) // best effort: newer kernels do not need it
	spec, err := loadXdp()
	if err != nil {
		return nil, fmt.Errorf("probexdp: %w", err)
	}
	if opts.RingSize != 0 {
		spec.Maps[xdpMapEvents].MaxEntries = uint32(opts.RingSize)
	} else {
		spec.Maps[xdpMapEvents].MaxEntries = defaultRingSize
	}
	p := &Program{slots: map[string]uint32{}}
	if err := spec.LoadAndAssign(&p.objs, nil); err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			return nil, fmt.Errorf("probexdp: load: %w", ve) // ends with the verifier's reason
		}
		return nil, fmt.Errorf("probexdp: load: %w", err)
	}
	for i := MaxInterfaces; i >= 1; i-- {
		p.free = append(p.free, uint32(i))
	}
	p.rate = rateConfig(opts.RatePerSource, opts.BurstPerSource)
	if err := p.writeSettings(); err != nil {
		p.objs.Close()
		return nil, err
	}
	return p, nil
}

// rateConfig turns a rate and burst into the program's GCRA parameters.
func rateConfig(rate, burst int) xdpConfig {
	if rate <= 0 {
		return xdpConfig{}
	}
	if burst <= 0 {
		burst = 2 * rate
	}
	interval := uint64(time.Second) / uint64(rate)
	return xdpConfig{RateIntervalNs: interval, BurstNs: uint64(burst-1) * interval}
}

// Close unloads the program and its maps. Links still attached keep the
// program alive until they are closed too.
func (p *Program) Close() error {
	if err := p.objs.Close(); err != nil {
		return fmt.Errorf("probexdp: close: %w", err)
	}
	return nil
}

// SetForward says whether the leader forwards probes for segments held
// nowhere known; when it does, every probe the program consumes (except a
// leader's re-multicast) reaches the leader.
func (p *Program) SetForward(on bool) error { return p.setFlag(flagForward, on) }

func (p *Program) setFlag(flag uint32, on bool) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if on {
		p.flags |= flag
	} else {
		p.flags &^= flag
	}
	return p.writeSettingsLocked()
}

func (p *Program) writeSettings() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.writeSettingsLocked()
}

func (p *Program) writeSettingsLocked() error {
	cfg := p.rate
	cfg.Flags = p.flags
	if err := p.objs.Settings.Update(uint32(0), &cfg, ebpf.UpdateAny); err != nil {
		return fmt.Errorf("probexdp: settings: %w", err)
	}
	return nil
}

// slot returns the counters slot of an interface name, allocating one
// (with zeroed counters) the first time; 0 when all are taken.
func (p *Program) slot(name string) uint32 {
	p.mu.Lock()
	defer p.mu.Unlock()
	if s, ok := p.slots[name]; ok {
		return s
	}
	if len(p.free) == 0 {
		return 0
	}
	s := p.free[len(p.free)-1]
	p.free = p.free[:len(p.free)-1]
	zero := make([]xdpCounters, runtime.NumCPU())
	if n, err := ebpf.PossibleCPU(); err == nil {
		zero = make([]xdpCounters, n)
	}
	if p.objs.Stats.Update(s, zero, ebpf.UpdateAny) != nil {
		p.free = append(p.free, s)
		return 0
	}
	p.slots[name] = s
	return s
}

// bindSlot routes the counters of interface index to name's slot.
func (p *Program) bindSlot(name string, index int) error {
	s := p.slot(name)
	if s == 0 {
		return nil // counted in slot 0 with the other interfaces
	}
	if err := p.objs.Ifslots.Update(uint32(index), s, ebpf.UpdateAny); err != nil {
		return fmt.Errorf("probexdp: counters slot of %s: %w", name, err)
	}
	return nil
}

// unbindSlot forgets the index (the interface is gone or detached); the
// name keeps its slot and counters.
func (p *Program) unbindSlot(index int) {
	_ = p.objs.Ifslots.Delete(uint32(index))
}

// Counters are the program's outcome counters (probe.c enum counter).
type Counters struct {
	// Other counts packets that are not UDP to port 3702 (all
	// interfaces together; only Totals has them) and Fragments IP
	// fragments; both pass untouched.
	Other, Fragments uint64
	// Discovery counts UDP datagrams to port 3702.
	Discovery uint64
	// Passed to the socket path, by reason.
	PassUnicast, PassHeader, PassOversize, PassOtherWSD, PassV2, PassUncertain, PassChecksum, PassRingFull uint64
	// PassVLAN counts tagged discovery datagrams (all interfaces
	// together), left to their VLAN interface's own program.
	PassVLAN uint64
	// Dropped: over the per-source rate, or held nowhere known.
	DropRateLimit, DropNotHeld uint64
	// Captured probes went to the leader (then dropped from the stack);
	// CapturedHeld and CapturedPeer those with a segment in the held or
	// the peer map.
	Captured, CapturedHeld, CapturedPeer uint64
}

func countersFrom(sum [len(xdpCounters{}.N)]uint64) Counters {
	return Counters{
		Other: sum[0], Fragments: sum[1], Discovery: sum[2],
		PassUnicast: sum[3], PassHeader: sum[4], PassOversize: sum[5], PassOtherWSD: sum[6],
		PassV2: sum[7], PassUncertain: sum[8], PassChecksum: sum[9], PassRingFull: sum[10],
		DropRateLimit: sum[11], DropNotHeld: sum[12],
		Captured: sum[13], CapturedHeld: sum[14], CapturedPeer: sum[15], PassVLAN: sum[16],
	}
}

func (c *Counters) add(o Counters) {
	c.Other += o.Other
	c.Fragments += o.Fragments
	c.Discovery += o.Discovery
	c.PassUnicast += o.PassUnicast
	c.PassHeader += o.PassHeader
	c.PassOversize += o.PassOversize
	c.PassOtherWSD += o.PassOtherWSD
	c.PassV2 += o.PassV2
	c.PassUncertain += o.PassUncertain
	c.PassChecksum += o.PassChecksum
	c.PassRingFull += o.PassRingFull
	c.PassVLAN += o.PassVLAN
	c.DropRateLimit += o.DropRateLimit
	c.DropNotHeld += o.DropNotHeld
	c.Captured += o.Captured
	c.CapturedHeld += o.CapturedHeld
	c.CapturedPeer += o.CapturedPeer
}

// Dropped returns the drops by reason, as the management API names them.
func (c Counters) Dropped() map[string]uint64 {
	return map[string]uint64{"rate-limit": c.DropRateLimit, "not-held": c.DropNotHeld}
}

// Map returns every counter by the name the API and metrics use.
func (c Counters) Map() map[string]uint64 {
	return map[string]uint64{
		"discovery":            c.Discovery,
		"fragment":             c.Fragments,
		"pass-unicast":         c.PassUnicast,
		"pass-header":          c.PassHeader,
		"pass-oversize":        c.PassOversize,
		"pass-not-peerdist-v1": c.PassOtherWSD,
		"pass-v2":              c.PassV2,
		"pass-uncertain":       c.PassUncertain,
		"pass-checksum":        c.PassChecksum,
		"pass-ring-full":       c.PassRingFull,
		"pass-vlan":            c.PassVLAN,
		"drop-rate-limit":      c.DropRateLimit,
		"drop-not-held":        c.DropNotHeld,
		"captured":             c.Captured,
		"captured-held":        c.CapturedHeld,
		"captured-peer":        c.CapturedPeer,
	}
}

// slotCounters sums one slot over the CPUs.
func (p *Program) slotCounters(slot uint32) (Counters, error) {
	var perCPU []xdpCounters
	if err := p.objs.Stats.Lookup(slot, &perCPU); err != nil {
		return Counters{}, fmt.Errorf("probexdp: counters: %w", err)
	}
	var sum [len(xdpCounters{}.N)]uint64
	for _, c := range perCPU {
		for i, n := range c.N {
			sum[i] += n
		}
	}
	return countersFrom(sum), nil
}

// InterfaceCounters returns the counters of an interface the program was
// attached to by name (zero if it never was).
func (p *Program) InterfaceCounters(name string) (Counters, error) {
	p.mu.Lock()
	s, ok := p.slots[name]
	p.mu.Unlock()
	if !ok {
		return Counters{}, nil
	}
	return p.slotCounters(s)
}

// Totals returns the counters of every interface together, Other
// included.
func (p *Program) Totals() (Counters, error) {
	var total Counters
	for s := uint32(0); s <= MaxInterfaces; s++ {
		c, err := p.slotCounters(s)
		if err != nil {
			return Counters{}, err
		}
		total.add(c)
	}
	return total, nil
}
