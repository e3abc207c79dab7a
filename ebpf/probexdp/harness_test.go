package probexdp

import (
	"errors"
	"os"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/ringbuf"
)

// XDP verdicts (enum xdp_action).
const (
	xdpDrop = 1
	xdpPass = 2
)

// requireBPF skips the test unless it runs as root, which loading and
// attaching XDP programs needs (CI runs as root).
func requireBPF(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (CAP_BPF, CAP_NET_ADMIN) to load XDP programs (CI runs as root): run `sudo go test` to include it")
	}
}

// harness is a loaded program run with BPF_PROG_RUN.
type harness struct {
	t  testing.TB
	p  *Program
	rd *ringbuf.Reader
}

func newHarness(t testing.TB, opts Options) *harness {
	t.Helper()
	requireBPF(t)
	p, err := Load(opts)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	t.Cleanup(func() { p.Close() })
	rd, err := ringbuf.NewReader(p.objs.Events)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rd.Close() })
	h := &harness{t: t, p: p, rd: rd}
	h.flag(flagHeldSynced, true)
	h.flag(flagPeerSynced, true)
	return h
}

func (h *harness) flag(f uint32, on bool) {
	h.t.Helper()
	if err := h.p.setFlag(f, on); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) hold(ids ...[]byte) {
	h.t.Helper()
	for _, id := range ids {
		if err := h.p.putHeld(id); err != nil {
			h.t.Fatal(err)
		}
	}
}

func (h *harness) holdPeer(ids ...[]byte) {
	h.t.Helper()
	for _, id := range ids {
		if err := h.p.objs.Peer.Update([SegmentIDSize]byte(id), uint8(1), ebpf.UpdateAny); err != nil {
			h.t.Fatal(err)
		}
	}
}

// run runs the program on one frame and returns its verdict, the event
// it submitted (nil if none) and how its counters moved.
func (h *harness) run(pkt []byte) (uint32, *Probe, Counters) {
	h.t.Helper()
	before, err := h.p.Totals()
	if err != nil {
		h.t.Fatal(err)
	}
	verdict, err := h.p.objs.OutpostProbe.Run(&ebpf.RunOptions{Data: pkt})
	if err != nil {
		h.t.Fatalf("run: %v", err)
	}
	after, err := h.p.Totals()
	if err != nil {
		h.t.Fatal(err)
	}
	return verdict, h.event(), diff(after, before)
}

// event returns the next event on the ring, nil if there is none.
func (h *harness) event() *Probe { return h.eventFor(h.t) }

// eventFor is event reporting failures to tb.
func (h *harness) eventFor(tb testing.TB) *Probe {
	tb.Helper()
	h.rd.SetDeadline(time.Now())
	rec, err := h.rd.Read()
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return nil
	}
	if err != nil {
		tb.Fatal(err)
	}
	p, err := decodeEvent(rec.RawSample, func(int) string { return "lo" })
	if err != nil {
		tb.Fatal(err)
	}
	return &p
}

// diff is a - b, counter by counter.
func diff(a, b Counters) Counters {
	return Counters{
		Other: a.Other - b.Other, Fragments: a.Fragments - b.Fragments, Discovery: a.Discovery - b.Discovery,
		PassUnicast: a.PassUnicast - b.PassUnicast, PassHeader: a.PassHeader - b.PassHeader,
		PassOversize: a.PassOversize - b.PassOversize, PassOtherWSD: a.PassOtherWSD - b.PassOtherWSD,
		PassV2: a.PassV2 - b.PassV2, PassUncertain: a.PassUncertain - b.PassUncertain,
		PassChecksum: a.PassChecksum - b.PassChecksum, PassRingFull: a.PassRingFull - b.PassRingFull, PassVLAN: a.PassVLAN - b.PassVLAN,
		DropRateLimit: a.DropRateLimit - b.DropRateLimit, DropNotHeld: a.DropNotHeld - b.DropNotHeld,
		Captured: a.Captured - b.Captured, CapturedHeld: a.CapturedHeld - b.CapturedHeld, CapturedPeer: a.CapturedPeer - b.CapturedPeer,
	}
}
