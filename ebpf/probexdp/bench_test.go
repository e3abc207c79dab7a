package probexdp

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/cilium/ebpf/ringbuf"

	"github.com/outpost-appliance/outpost/peerdist/pccrd"
)

// BenchmarkFastPath measures, in one run, what a packet costs the XDP
// program (BPF_PROG_RUN, ns per packet) for traffic that is not discovery,
// a probe for a segment not held (dropped) and one for a held segment
// (captured: checksum, ring buffer event), and beside them the socket path
// for the same probe: receive on a UDP socket, decode with pccrd, look the
// ID up (in a Go map, the cheapest lookup there is, so the ratio is a lower
// bound). make bench prints the ratios.
func BenchmarkFastPath(b *testing.B) {
	probe := ipxeProbe(b)
	id := mustHex(ipxeToken)
	xdp := func(name string, pkt []byte, hold bool, want uint32) {
		b.Run(name, func(b *testing.B) {
			h := newHarness(b, Options{RingSize: 1 << 24})
			if hold {
				h.hold(id)
			}
			// Drain the ring while the kernel runs the program, so that
			// reservations do not fail.
			ctx, cancel := context.WithCancel(context.Background())
			drained := make(chan struct{})
			go func() {
				defer close(drained)
				var rec ringbuf.Record
				for ctx.Err() == nil {
					h.rd.SetDeadline(time.Now().Add(50 * time.Millisecond))
					h.rd.ReadInto(&rec)
				}
			}()
			before, _ := h.p.Totals()
			verdict, per, err := h.p.objs.OutpostProbe.Benchmark(pkt, b.N, nil)
			cancel()
			<-drained
			if err != nil {
				b.Fatal(err)
			}
			if verdict != want {
				b.Fatalf("verdict %d, want %d", verdict, want)
			}
			after, _ := h.p.Totals()
			if full := after.PassRingFull - before.PassRingFull; full*100 > uint64(b.N) {
				b.Logf("%d of %d held probes found the ring full", full, b.N)
			}
			b.ReportMetric(float64(per.Nanoseconds()), "ns/packet")
			if per > 0 {
				b.ReportMetric(float64(time.Second)/float64(per), "packets/s")
			}
		})
	}
	xdp("xdp-pass-non3702", frame{src: client4, dport: 53, payload: probe}.bytes(), false, xdpPass)
	xdp("xdp-drop-unheld", frame{src: client4, payload: probe}.bytes(), false, xdpDrop)
	xdp("xdp-capture-held", frame{src: client4, payload: probe}.bytes(), true, xdpDrop)

	b.Run("socket-path", func(b *testing.B) {
		rx, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			b.Fatal(err)
		}
		defer rx.Close()
		rx.SetReadBuffer(4 << 20)
		tx, err := net.DialUDP("udp4", nil, rx.LocalAddr().(*net.UDPAddr))
		if err != nil {
			b.Fatal(err)
		}
		defer tx.Close()
		held := map[[32]byte]bool{[32]byte(id): true}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() {
			for ctx.Err() == nil {
				tx.Write(probe) // faster than the receiver; losses do not matter
			}
		}()
		buf := make([]byte, pccrd.MaxDatagramSize)
		found := 0
		b.ResetTimer()
		start := time.Now()
		for range b.N {
			n, _, err := rx.ReadFromUDPAddrPort(buf)
			if err != nil {
				b.Fatal(err)
			}
			p, err := pccrd.ParseProbe(buf[:n])
			if err != nil {
				b.Fatal(err)
			}
			for _, sid := range p.SegmentIDs {
				if len(sid) == 32 && held[[32]byte(sid)] {
					found++
				}
			}
		}
		per := time.Since(start) / time.Duration(b.N)
		b.StopTimer()
		if found != b.N {
			b.Fatalf("looked up %d of %d", found, b.N)
		}
		b.ReportMetric(float64(per.Nanoseconds()), "ns/packet")
		b.ReportMetric(float64(time.Second)/float64(per), "packets/s")
	})
}
