package forward

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	testInterval = 100 * time.Millisecond
	testSecret   = "shared-secret-0123456789"
)

// changeLog collects a forwarder's peer changes.
type changeLog struct {
	mu      sync.Mutex
	changes []PeerChange
}

func (l *changeLog) add(c PeerChange) {
	l.mu.Lock()
	l.changes = append(l.changes, c)
	l.mu.Unlock()
}

func (l *changeLog) to(state PeerState) []PeerChange {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []PeerChange
	for _, c := range l.changes {
		if c.State == state {
			out = append(out, c)
		}
	}
	return out
}

// keepaliveLeader runs a forwarder on port whose one peer is
// 127.0.0.1:peerPort, with short keepalives; stop ends it.
type keepaliveLeader struct {
	f       *Forwarder
	changes *changeLog
	stop    func()
}

func startKeepaliveLeader(t *testing.T, port, peerPort int, changes *changeLog) *keepaliveLeader {
	return startKeepaliveLeaderMisses(t, port, peerPort, changes, 0)
}

func startKeepaliveLeaderMisses(t *testing.T, port, peerPort int, changes *changeLog, misses int) *keepaliveLeader {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	f, err := Listen(ctx, Config{
		Secret: []byte(testSecret), Peers: []PeerConfig{{Address: fmt.Sprintf("127.0.0.1:%d", peerPort)}},
		RequestPort: port, ReplyPort: port + 1, KeepaliveInterval: testInterval, KeepaliveMisses: misses,
		OnPeerChange: changes.add,
	})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- f.Serve(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Error(err)
			}
		})
	}
	t.Cleanup(stop)
	return &keepaliveLeader{f: f, changes: changes, stop: stop}
}

func twoPortPairs(t *testing.T) (int, int) {
	pa, pb := freePortPair(t), 0
	for pb == 0 || pb == pa || pb == pa+1 || pb+1 == pa {
		pb = freePortPair(t)
	}
	return pa, pb
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func peerStats(f *Forwarder) LeaderStats { return f.Stats().Leaders[0] }

// TestKeepaliveReachability runs two leaders over loopback: each sees
// the other reachable; when one stops, the other declares it unreachable
// once, after the misses, and reachable again with the outage's length
// when it comes back.
func TestKeepaliveReachability(t *testing.T) {
	pa, pb := twoPortPairs(t)
	a := startKeepaliveLeader(t, pa, pb, &changeLog{})
	b := startKeepaliveLeader(t, pb, pa, &changeLog{})
	// (The first keepalive of the one started first may find nobody.)
	waitUntil(t, "both reachable, keepalives acked", func() bool {
		sa, sb := peerStats(a.f), peerStats(b.f)
		return sa.State == PeerReachable && sb.State == PeerReachable && sa.AcksReceived > 0 && sb.AcksReceived > 0
	})
	if s := peerStats(a.f); s.AcksReceived == 0 || s.KeepalivesSent == 0 || s.KeepalivesReceived == 0 || s.LastContact.IsZero() || s.StateSince.IsZero() {
		t.Errorf("A's counters: %+v", s)
	}
	if c := a.changes.to(PeerReachable); len(c) != 1 || c[0].From != PeerUnknown || c[0].Name != c[0].Address {
		t.Errorf("A's reachable changes at start: %+v", c)
	}

	b.stop()
	stopped := time.Now()
	waitUntil(t, "B unreachable", func() bool { return peerStats(a.f).State == PeerUnreachable })
	if d := time.Since(stopped); d < 2*testInterval {
		t.Errorf("unreachable %v after the stop: sooner than the misses allow", d)
	}
	time.Sleep(5 * testInterval) // more misses: still the one outage
	down := a.changes.to(PeerUnreachable)
	if len(down) != 1 || down[0].From != PeerReachable || !strings.HasPrefix(down[0].Reason, "no answer to 3 keepalives in ") ||
		down[0].DownSince.IsZero() || down[0].DownSince.After(stopped) {
		t.Fatalf("unreachable changes: %+v", down)
	}
	if s := peerStats(a.f); s.Reason != down[0].Reason || s.State != PeerUnreachable {
		t.Errorf("A's stats while B is down: %+v", s)
	}

	b = startKeepaliveLeader(t, pb, pa, &changeLog{})
	waitUntil(t, "B reachable again", func() bool { return peerStats(a.f).State == PeerReachable })
	up := a.changes.to(PeerReachable)
	if len(up) != 2 || up[1].From != PeerUnreachable || up[1].DownFor < 3*testInterval || up[1].DownSince != down[0].DownSince {
		t.Fatalf("reachable changes: %+v", up)
	}
	if s := peerStats(a.f); s.Reason != "" {
		t.Errorf("reason kept after recovery: %q", s.Reason)
	}
	if len(a.changes.to(PeerUnreachable)) != 1 {
		t.Errorf("unreachable changes: %+v", a.changes.to(PeerUnreachable))
	}
}

// TestKeepaliveNeverAnswered: a peer that never answers goes from unknown
// to unreachable after the misses, once.
func TestKeepaliveNeverAnswered(t *testing.T) {
	pa, pb := twoPortPairs(t)
	a := startKeepaliveLeader(t, pa, pb, &changeLog{})
	time.Sleep(testInterval / 2)
	if s := peerStats(a.f); s.State != PeerUnknown || len(a.changes.to(PeerUnreachable)) != 0 {
		t.Fatalf("before the first miss period: %+v", s)
	}
	waitUntil(t, "unreachable", func() bool { return peerStats(a.f).State == PeerUnreachable })
	time.Sleep(3 * testInterval)
	if c := a.changes.to(PeerUnreachable); len(c) != 1 || c[0].From != PeerUnknown || !c[0].LastContact.IsZero() {
		t.Errorf("changes: %+v", c)
	}
}

// fakePeer is a peer leader made by hand on 127.0.0.1: its request and
// reply sockets.
type fakePeer struct {
	req, rep *net.UDPConn
}

func listenUDP(t *testing.T, addr string) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort(addr)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// read returns the next datagram of type typ on c, opened.
func read(t *testing.T, c *net.UDPConn, typ Type, within time.Duration) (*Envelope, bool) {
	t.Helper()
	buf := make([]byte, MaxMessageSize)
	deadline := time.Now().Add(within)
	for {
		c.SetReadDeadline(deadline)
		n, _, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			return nil, false
		}
		e, err := Open(DeriveKey([]byte(testSecret)), buf[:n])
		if err != nil {
			t.Fatalf("datagram from the forwarder: %v", err)
		}
		if e.Type == typ {
			return e, true
		}
	}
}

func send(t *testing.T, c *net.UDPConn, key Key, e *Envelope, port int) {
	t.Helper()
	b, err := Seal(key, e)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.WriteToUDPAddrPort(b, netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port))); err != nil {
		t.Fatal(err)
	}
}

func ackOf(nonce [16]byte) *Envelope {
	e := NewEnvelope(time.Now())
	e.Ack = &KeepaliveAck{Nonce: nonce}
	return e
}

func keepalive() *Envelope {
	e := NewEnvelope(time.Now())
	e.Keepalive = &Keepalive{}
	return e
}

// TestKeepaliveAckRules: acks of no outstanding keepalive, with a bad MAC
// or from an address that is no peer are counted and change nothing; a
// keepalive from no peer gets no ack; a peer's keepalive gets one (to its
// reply port, quoting its nonce), within the keepalive rate.
func TestKeepaliveAckRules(t *testing.T) {
	pa, pb := twoPortPairs(t)
	key := DeriveKey([]byte(testSecret))
	// Misses would make the silent fake peer unreachable: this test is
	// about what does not make it reachable, so it has all the time.
	a := startKeepaliveLeaderMisses(t, pa, pb, &changeLog{}, 1000)
	peer := fakePeer{req: listenUDP(t, fmt.Sprintf("127.0.0.1:%d", pb)), rep: listenUDP(t, fmt.Sprintf("127.0.0.1:%d", pb+1))}
	stranger := listenUDP(t, fmt.Sprintf("127.0.0.2:%d", pb+1))

	ka, ok := read(t, peer.req, TypeKeepalive, 2*time.Second)
	if !ok {
		t.Fatal("no keepalive from the forwarder")
	}
	var wrong [16]byte
	copy(wrong[:], "not a nonce sent")
	send(t, peer.rep, key, ackOf(wrong), pa+1)
	send(t, peer.rep, otherKey, ackOf(ka.Nonce), pa+1)
	send(t, stranger, key, ackOf(ka.Nonce), pa+1)
	send(t, stranger, key, keepalive(), pa)
	waitUntil(t, "the bad acks counted", func() bool {
		s := peerStats(a.f)
		return s.UnmatchedAcks == 1 && s.AuthFailures == 1 && a.f.Stats().UnknownSources == 2
	})
	if _, ok := read(t, stranger, TypeKeepaliveAck, 3*testInterval); ok {
		t.Error("a keepalive from no configured peer was acked")
	}
	if s := peerStats(a.f); s.State != PeerUnknown || !s.LastContact.IsZero() || s.AcksReceived != 0 || s.KeepalivesReceived != 0 {
		t.Fatalf("after bad acks: %+v", s)
	}

	// The ack of a keepalive outstanding counts once.
	send(t, peer.rep, key, ackOf(ka.Nonce), pa+1)
	send(t, peer.rep, key, ackOf(ka.Nonce), pa+1)
	waitUntil(t, "the ack counted", func() bool { s := peerStats(a.f); return s.AcksReceived == 1 && s.UnmatchedAcks == 2 })
	if s := peerStats(a.f); s.State != PeerReachable {
		t.Errorf("after its ack: %+v", s)
	}

	mine := keepalive()
	send(t, peer.req, key, mine, pa)
	for {
		ack, ok := read(t, peer.rep, TypeKeepaliveAck, 2*time.Second)
		if !ok {
			t.Fatal("keepalive not acked")
		}
		if ack.Ack.Nonce == mine.Nonce {
			break
		}
	}

	// A flood of keepalives is acked only up to the keepalive rate.
	for range 100 {
		send(t, peer.req, key, keepalive(), pa)
	}
	waitUntil(t, "the flood counted", func() bool { return peerStats(a.f).KeepalivesReceived == 101 })
	if s := peerStats(a.f); s.RateLimited < 100-2*keepaliveRate {
		t.Errorf("flood of 100 keepalives: %d over the rate, want at least %d", s.RateLimited, 100-2*keepaliveRate)
	}
}
