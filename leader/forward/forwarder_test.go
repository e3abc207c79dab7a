package forward

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/outpost-appliance/outpost/leader/holders"
	"github.com/outpost-appliance/outpost/peerdist/pccrc"
	"github.com/outpost-appliance/outpost/peerdist/pccrd"
)

// freePortPair finds a port p on 127.0.0.1 with p+1 free too (a peer's
// reply port is its request port + 1).
func freePortPair(t *testing.T) int {
	t.Helper()
	for range 50 {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p := c.LocalAddr().(*net.UDPAddr).Port
		c.Close()
		if p >= 65535 {
			continue
		}
		c2, err := net.ListenPacket("udp", fmt.Sprintf(":%d", p+1))
		if err == nil {
			c2.Close()
			return p
		}
	}
	t.Fatal("no free port pair")
	return 0
}

type leaderUnderTest struct {
	f       *Forwarder
	holders *holders.Table
	port    int
}

func startForwarder(t *testing.T, secret string, port, peerPort int, forward bool, local map[string]LocalSegment) *leaderUnderTest {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	h := holders.New(0, 0)
	f, err := Listen(ctx, Config{
		Secret: []byte(secret), Peers: []PeerConfig{{Address: fmt.Sprintf("127.0.0.1:%d", peerPort), Name: "peer"}},
		RequestPort: port, ReplyPort: port + 1, Forward: forward, PeerPort: 1337, Holders: h,
		Local: func(_ context.Context, id []byte) (LocalSegment, bool) {
			s, ok := local[string(id)]
			return s, ok
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- f.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return &leaderUnderTest{f: f, holders: h, port: port}
}

// TestForwardAnsweredFromPeerStore runs two forwarders over loopback: the
// origin forwards a probe, the peer answers from its store, the origin
// records the holder (the peer's own address, its peer port) and answers
// its client once, however many times the probe is repeated.
func TestForwardAnsweredFromPeerStore(t *testing.T) {
	pa, pb := freePortPair(t), 0
	for pb == 0 || pb == pa || pb == pa+1 || pb+1 == pa {
		pb = freePortPair(t)
	}
	seg := bytes.Repeat([]byte{0xAB}, 32)
	a := startForwarder(t, "shared-secret-0123456789", pa, pb, true, nil)
	b := startForwarder(t, "shared-secret-0123456789", pb, pa, false,
		map[string]LocalSegment{string(seg): {Version: pccrc.V1, Size: 3 << 16, Blocks: 3, Complete: true}})

	answered := make(chan struct{}, 4)
	probe := &pccrd.Probe{MessageID: pccrd.NewMessageID(), Version: pccrd.V1, SegmentIDs: [][]byte{seg}}
	answer := func(context.Context) bool { answered <- struct{}{}; return true }
	for range 3 {
		if !a.f.Forward(probe, probe.SegmentIDs, answer) {
			t.Fatal("not forwarded")
		}
	}
	select {
	case <-answered:
	case <-time.After(5 * time.Second):
		t.Fatalf("no answer; stats A %+v B %+v", a.f.Stats(), b.f.Stats())
	}
	got, ok := a.holders.Lookup(seg)
	want := netip.MustParseAddrPort("127.0.0.1:1337")
	if !ok || len(got.Holders) != 1 || got.Holders[0].Addr != want || got.Size != 3<<16 || got.Version != pccrc.V1 || !got.Complete {
		t.Fatalf("holders: %+v", got)
	}
	time.Sleep(100 * time.Millisecond)
	if len(answered) != 0 {
		t.Errorf("client answered %d more times", len(answered))
	}
	sa, sb := a.f.Stats().Leaders[0], b.f.Stats().Leaders[0]
	if sa.ForwardsSent != 1 || sb.ForwardsReceived != 1 || sb.MatchesSent != 1 || sa.MatchesReceived != 1 || sa.LastContact.IsZero() {
		t.Errorf("counters: A %+v, B %+v", sa, sb)
	}
}

// TestForwardWrongSecret: a peer with another secret is refused and
// counted; nothing is recorded, and it is not taken as reachable.
func TestForwardWrongSecret(t *testing.T) {
	pa, pb := freePortPair(t), 0
	for pb == 0 || pb == pa || pb == pa+1 || pb+1 == pa {
		pb = freePortPair(t)
	}
	seg := bytes.Repeat([]byte{0xCD}, 32)
	a := startForwarder(t, "shared-secret-0123456789", pa, pb, true, nil)
	b := startForwarder(t, "some-other-secret-987654", pb, pa, false,
		map[string]LocalSegment{string(seg): {Version: pccrc.V1, Size: 1, Blocks: 1}})
	probe := &pccrd.Probe{MessageID: pccrd.NewMessageID(), Version: pccrd.V1, SegmentIDs: [][]byte{seg}}
	a.f.Forward(probe, probe.SegmentIDs, func(context.Context) bool { t.Error("answered"); return true })
	deadline := time.Now().Add(5 * time.Second)
	for b.f.Stats().Leaders[0].AuthFailures == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	// A's keepalive fails too, unless it came before B listened.
	if s := b.f.Stats().Leaders[0]; s.AuthFailures < 1 || s.AuthFailures > 2 || s.ForwardsReceived != 0 || s.State != PeerUnknown {
		t.Errorf("B counters: %+v", s)
	}
}
