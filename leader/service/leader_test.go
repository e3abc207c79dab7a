package service_test

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/outpost-appliance/outpost/firmware/netnstest"
	"github.com/outpost-appliance/outpost/leader/forward"
	"github.com/outpost-appliance/outpost/peerdist/pccrc"
	"github.com/outpost-appliance/outpost/peerdist/pccrd"
)

const labSecret = "lab-shared-secret-0123456789"

// V1 content of three full blocks and a short one, and smaller pieces.
var (
	contentA  = Content{Seed: 1, Size: 3*pccrc.BlockSize + 5000, Version: pccrc.V1}
	contentB  = Content{Seed: 2, Size: 3*pccrc.BlockSize + 7000, Version: pccrc.V1}
	contentV2 = Content{Seed: 3, Size: 300000, Version: pccrc.V2}
	nobodys   = Content{Seed: 4, Size: 1000, Version: pccrc.V1}
)

// (1) A client's probe is answered from the leader's store with the
// leader's address on the client's subnet and the peer port, over IPv4
// and IPv6, V1 (iPXE style) and V2; the blocks are then fetched and
// verified. A probe for content held nowhere gets silence.
func TestLocalStoreAnswers(t *testing.T) {
	l := newLab(t)
	l.subnet(1)
	leaderNS := l.host("ola", [2]int{1, 2})
	client := l.host("olc", [2]int{1, 10})
	p := leaderParams(t, "eth0")
	p.Hold = []Content{contentA, contentV2}
	leader := start(t, leaderNS, "leader", "leader", p)

	ciA, dataA := writeCI(t, contentA)
	res, code := probe(t, client, "eth0", ciA)
	if code != 0 || res.Answered != len(res.Segments) {
		t.Fatalf("probe: exit %d, %+v", code, res)
	}
	// iPXE sends one MessageID to both groups; the leader answers one
	// copy. Each family on its own gets the leader's address in it.
	if xa := xaddrs(res); len(xa) != 1 || xa[ip(1, 2)+":1337"]+xa["[fd00:61::2]:1337"] != 1 {
		t.Errorf("XAddrs %v: want one answer, the leader's address on the client's subnet, peer port", xa)
	}
	for family, want := range map[string]string{"4": ip(1, 2) + ":1337", "6": "[fd00:61::2]:1337"} {
		res, code := probe(t, client, "eth0", ciA, "--family", family)
		if xa := xaddrs(res); code != 0 || xa[want] != 1 || len(xa) != 1 {
			t.Errorf("IPv%s: exit %d, XAddrs %v, want %s", family, code, xa, want)
		}
	}
	if m := res.Segments[0].Matches[0]; m.BlockCount != 4 || m.MetadataVersion == 0 || m.InstanceID == 0 {
		t.Errorf("match %+v: want 4 blocks and an AppSequence", m)
	}
	got, err := get(t, client, ip(1, 2)+":1337", ciA)
	if err != nil || !bytes.Equal(got, dataA) {
		t.Fatalf("get: %v", err)
	}

	ciV2, _ := writeCI(t, contentV2)
	res, code = probe(t, client, "eth0", ciV2, "--v2")
	if code != 0 || res.Answered != len(res.Segments) || res.Segments[0].Matches[0].Availability != "full" {
		t.Fatalf("V2 probe: exit %d, %+v", code, res)
	}

	ciN, _ := writeCI(t, nobodys)
	if res, code := probe(t, client, "eth0", ciN); code != 1 || res.Answered != 0 {
		t.Fatalf("probe for content nobody holds: exit %d, %+v", code, res)
	}
	s := leader.stats()
	if len(s.Interfaces) != 1 || s.Interfaces[0].Interface != "eth0" || s.Interfaces[0].ProbesAnswered < 4 || s.Interfaces[0].Silent < 1 {
		t.Errorf("stats %+v", s.Interfaces)
	}
}

// (2) and (3): a client in subnet A obtains a segment held only by a
// Windows-like peer in subnet B: A's leader forwards the probe, B's leader
// re-multicasts it and returns the peer's match, A's leader answers with
// its relay and relays the blocks, byte-identical and verified. A second
// client request is then answered and served from A's own store.
func TestRelayAcrossSubnets(t *testing.T) {
	l := newLab(t)
	l.subnet(1)
	l.subnet(2)
	nsA := l.host("ola", [2]int{1, 2})
	nsB := l.host("olb", [2]int{2, 2})
	peerB := l.host("olp", [2]int{2, 20})
	client := l.host("olc", [2]int{1, 10})

	pa := leaderParams(t, "eth0")
	pa.Forward, pa.Secret, pa.Peers = true, labSecret, []forward.PeerConfig{{Address: ip(2, 2), Name: "b"}}
	pb := leaderParams(t, "eth0")
	pb.Forward, pb.Secret, pb.Peers = true, labSecret, []forward.PeerConfig{{Address: ip(1, 2), Name: "a"}}
	leaderA := start(t, nsA, "leader A", "leader", pa)
	leaderB := start(t, nsB, "leader B", "leader", pb)
	start(t, peerB, "peer B", "peer", PeerParams{Interface: "eth0", Hold: contentB})

	ciB, dataB := writeCI(t, contentB)
	res, code := probe(t, client, "eth0", ciB)
	relay := ip(1, 2) + ":81"
	if code != 0 || res.Answered != len(res.Segments) || !answeredAt(res, 1, 2, 81) {
		t.Fatalf("probe in A: exit %d, XAddrs %v, want the relay %s", code, xaddrs(res), relay)
	}
	for x := range xaddrs(res) {
		if !strings.HasPrefix(x, "10.61.") && !strings.HasPrefix(x, "[fd00:61::") {
			t.Errorf("XAddrs %s is not on the client's subnet", x)
		}
	}
	got, err := get(t, client, relay, ciB)
	if err != nil || !bytes.Equal(got, dataB) {
		t.Fatalf("get through the relay: %v", err)
	}

	// (3) The next probe is answered from A's store (peer port), and the
	// content comes from there.
	// Relayed blocks are stored after they are sent; give the store a
	// moment to show them.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		res, code = probe(t, client, "eth0", ciB)
		if answeredAt(res, 1, 2, 1337) && res.Segments[0].Matches[0].BlockCount == 4 || time.Now().After(deadline) {
			break
		}
	}
	if code != 0 || !answeredAt(res, 1, 2, 1337) {
		t.Fatalf("second probe: exit %d, XAddrs %v, want A's own store", code, xaddrs(res))
	}
	got, err = get(t, client, ip(1, 2)+":1337", ciB)
	if err != nil || !bytes.Equal(got, dataB) {
		t.Fatalf("get from A's store: %v", err)
	}

	sa, sb := leaderA.stats(), leaderB.stats()
	la, lb := sa.Forwarding.Leaders[0], sb.Forwarding.Leaders[0]
	if la.ForwardsSent < 1 || la.MatchesReceived < 1 || la.RelayBytes == 0 || la.LastContact.IsZero() {
		t.Errorf("A's view of B: %+v", la)
	}
	if lb.ForwardsReceived < 1 || lb.MatchesSent < 1 || sb.Forwarding.Remulticasts < 1 {
		t.Errorf("B's view of A: %+v, remulticasts %d", lb, sb.Forwarding.Remulticasts)
	}
	if sa.Relay.Relayed != 4 || sa.Relay.Stored != 4 || sa.Interfaces[0].ProbesForwarded < 1 {
		t.Errorf("A relay %+v, interfaces %+v", sa.Relay, sa.Interfaces)
	}
}

// (4) Forged and replayed forwards are rejected and counted: a wrong
// secret, an old timestamp, a replay of a valid message, and a valid
// message from an address that is no peer.
func TestForgedAndReplayedForwards(t *testing.T) {
	l := newLab(t)
	l.subnet(1)
	nsB := l.host("olb", [2]int{1, 2})
	peerA := l.host("ola", [2]int{1, 3}) // the address B trusts
	stranger := l.host("olx", [2]int{1, 9})
	pb := leaderParams(t, "eth0")
	pb.Secret, pb.Peers = labSecret, []forward.PeerConfig{{Address: ip(1, 3), Name: "a"}}
	leaderB := start(t, nsB, "leader B", "leader", pb)

	target := netip.MustParseAddrPort(ip(1, 2) + ":3704")
	request := func(key forward.Key, at time.Time) []byte {
		e := forward.NewEnvelope(at)
		e.Request = &forward.Request{MessageID: pccrd.NewMessageID(), Version: pccrd.V1, SegmentIDs: [][]byte{bytes.Repeat([]byte{7}, 32)}}
		b, err := forward.Seal(key, e)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	send := func(ns *netnstest.NS, b []byte) {
		ns.Do(t, func() error {
			c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(target))
			if err != nil {
				return err
			}
			defer c.Close()
			_, err = c.Write(b)
			return err
		})
	}
	good := forward.DeriveKey([]byte(labSecret))
	valid := request(good, time.Now())
	send(peerA, request(forward.DeriveKey([]byte("wrong-secret-0123456789")), time.Now()))
	send(peerA, request(good, time.Now().Add(-10*time.Minute)))
	send(peerA, valid)
	send(peerA, valid)
	send(stranger, request(good, time.Now()))

	deadline := time.Now().Add(5 * time.Second)
	for {
		s := leaderB.stats().Forwarding
		a := s.Leaders[0]
		if a.AuthFailures == 1 && a.Rejected == 2 && a.ForwardsReceived == 1 && s.UnknownSources == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("want 1 auth failure, 2 rejected (old, replayed), 1 accepted, 1 unknown source: %+v", s)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// (5) Three leaders that all forward to each other, and a fourth sharing
// leader 2's subnet: one client probe is forwarded once to each peer and
// never again — not by the peers that re-multicast it, not by the leader
// that hears a re-multicast, not on the client's repeat.
func TestNoForwardingLoop(t *testing.T) {
	l := newLab(t)
	for i := 1; i <= 3; i++ {
		l.subnet(i)
	}
	names := []string{"", "l1", "l2", "l3"}
	peersOf := func(self int, others ...int) LeaderParams {
		p := leaderParams(t, "eth0")
		p.Forward, p.Secret = true, labSecret
		for _, o := range others {
			p.Peers = append(p.Peers, forward.PeerConfig{Address: ip(o, 2), Name: names[o]})
		}
		return p
	}
	leaders := []*child{
		start(t, l.host("ol1", [2]int{1, 2}), "leader 1", "leader", peersOf(1, 2, 3)),
		start(t, l.host("ol2", [2]int{2, 2}), "leader 2", "leader", peersOf(2, 1, 3)),
		start(t, l.host("ol3", [2]int{3, 2}), "leader 3", "leader", peersOf(3, 1, 2)),
		start(t, l.host("ol4", [2]int{2, 3}), "leader 4", "leader", peersOf(4, 1, 3)),
	}
	client := l.host("olc", [2]int{1, 10})
	ciN, _ := writeCI(t, nobodys)
	// Two sends of the same MessageID, as iPXE repeats after 1 s.
	out, code := run(t, client, "probe", []string{"--iface", "eth0", "--ci", ciN, "--json", "--wait", "1500ms"})
	if code != 1 {
		t.Fatalf("probe for content nobody holds answered: %s", out)
	}
	var sent, received [4]uint64
	for i, c := range leaders {
		for _, p := range c.stats().Forwarding.Leaders {
			sent[i] += p.ForwardsSent
			received[i] += p.ForwardsReceived
		}
	}
	if sent != [4]uint64{2, 0, 0, 0} || received != [4]uint64{0, 1, 1, 0} {
		t.Errorf("forwards sent %v, received %v: want only leader 1 sending, once to each peer", sent, received)
	}
}

// (6) A flood of 10 000 probes per second from one source does not stop
// answers to other clients: the flooder is cut by the per-source rate.
func TestFloodDoesNotSilenceOthers(t *testing.T) {
	l := newLab(t)
	l.subnet(1)
	leaderNS := l.host("ola", [2]int{1, 2})
	flooder := l.host("olf", [2]int{1, 66})
	client := l.host("olc", [2]int{1, 10})
	p := leaderParams(t, "eth0")
	p.Hold = []Content{contentA}
	leader := start(t, leaderNS, "leader", "leader", p)
	ciA, _ := writeCI(t, contentA)
	_, info, _ := contentA.Generate()

	done := make(chan string, 1)
	go func() {
		out, _ := run(t, flooder, "flood", FloodParams{Interface: "eth0", Segment: info.ID(0), Count: 20000, Rate: 10000})
		done <- out
	}()
	time.Sleep(300 * time.Millisecond) // the flood is on
	answered := 0
	const tries = 4
	for range tries {
		if res, code := probe(t, client, "eth0", ciA); code == 0 && res.Answered == 1 {
			answered++
		}
	}
	floodOut := <-done
	s := leader.stats().Interfaces[0]
	t.Logf("flood: %s; leader: %+v", strings.TrimSpace(floodOut), s)
	if answered != tries {
		t.Errorf("%d of %d client probes answered during the flood", answered, tries)
	}
	if s.RateLimited < 10000 || s.ProbesAnswered > 600 {
		t.Errorf("the flood was not cut: %+v", s)
	}
}

// (7) One appliance on two subnets answers each probe on its own subnet,
// with its address there.
func TestTwoSubnetsOneAppliance(t *testing.T) {
	l := newLab(t)
	l.subnet(1)
	l.subnet(2)
	leaderNS := l.host("ola", [2]int{1, 2}, [2]int{2, 2})
	c1 := l.host("olc", [2]int{1, 10})
	c2 := l.host("old", [2]int{2, 10})
	p := leaderParams(t, "eth0", "eth1")
	p.Hold = []Content{contentA}
	leader := start(t, leaderNS, "leader", "leader", p)
	ciA, _ := writeCI(t, contentA)
	for _, tc := range []struct {
		ns     *netnstest.NS
		subnet int
	}{{c1, 1}, {c2, 2}} {
		res, code := probe(t, tc.ns, "eth0", ciA)
		want := ip(tc.subnet, 2) + ":1337"
		if code != 0 || !answeredAt(res, tc.subnet, 2, 1337) {
			t.Errorf("client in subnet %d: exit %d, XAddrs %v, want %s", tc.subnet, code, xaddrs(res), want)
		}
		for x := range xaddrs(res) {
			if !strings.Contains(x, fmt.Sprintf("%d", 60+tc.subnet)) {
				t.Errorf("client in subnet %d got XAddrs %s", tc.subnet, x)
			}
		}
	}
	s := leader.stats().Interfaces
	if len(s) != 2 || s[0].ProbesAnswered == 0 || s[1].ProbesAnswered == 0 {
		t.Errorf("per-interface counters %+v", s)
	}
}

// (7, VLAN trunk) The same over 802.1Q: the appliance's trunk carries two
// VLANs, each bridged to its subnet.
func TestVLANTrunk(t *testing.T) {
	requireVLAN(t)
	l := newLab(t)
	l.subnet(1)
	l.subnet(2)
	leaderNS := netnstest.New(t, "olv")
	netnstest.Veth(t, l.router, "trunk", leaderNS, "eth0")
	for _, v := range []int{1, 2} {
		for _, side := range []struct {
			ns     *netnstest.NS
			parent string
		}{{l.router, "trunk"}, {leaderNS, "eth0"}} {
			parent, _ := side.ns.Handle.LinkByName(side.parent)
			vl := &netlink.Vlan{LinkAttrs: netlink.LinkAttrs{Name: fmt.Sprintf("%s.%d", side.parent, 10*v), ParentIndex: parent.Attrs().Index}, VlanId: 10 * v}
			if err := side.ns.Handle.LinkAdd(vl); err != nil {
				t.Fatal(err)
			}
			side.ns.Handle.LinkSetUp(vl)
		}
		br, _ := l.router.Handle.LinkByName(fmt.Sprintf("br%d", v))
		port, _ := l.router.Handle.LinkByName(fmt.Sprintf("trunk.%d", 10*v))
		if err := l.router.Handle.LinkSetMaster(port, br); err != nil {
			t.Fatal(err)
		}
		leaderNS.AddAddr(t, fmt.Sprintf("eth0.%d", 10*v), ip(v, 2)+"/24")
	}
	c1 := l.host("olc", [2]int{1, 10})
	c2 := l.host("old", [2]int{2, 10})
	p := leaderParams(t, "eth0.10", "eth0.20")
	p.Hold = []Content{contentA}
	start(t, leaderNS, "leader", "leader", p)
	ciA, _ := writeCI(t, contentA)
	for _, tc := range []struct {
		ns     *netnstest.NS
		subnet int
	}{{c1, 1}, {c2, 2}} {
		res, code := probe(t, tc.ns, "eth0", ciA, "--family", "4")
		if want := ip(tc.subnet, 2) + ":1337"; code != 0 || xaddrs(res)[want] == 0 {
			t.Errorf("client on VLAN %d: exit %d, XAddrs %v, want %s", 10*tc.subnet, code, xaddrs(res), want)
		}
	}
}

// requireVLAN skips unless the kernel can make 802.1Q sub-interfaces.
func requireVLAN(t *testing.T) {
	netnstest.RequireRoot(t)
	ns := netnstest.New(t, "olq")
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "d0"}, PeerName: "d1"}
	if err := ns.Handle.LinkAdd(veth); err != nil {
		t.Fatalf("veth: %v", err)
	}
	d, _ := ns.Handle.LinkByName("d0")
	err := ns.Handle.LinkAdd(&netlink.Vlan{LinkAttrs: netlink.LinkAttrs{Name: "d0.10", ParentIndex: d.Attrs().Index}, VlanId: 10})
	if err != nil {
		if errors.Is(err, errNotSupported) || strings.Contains(err.Error(), "not supported") || strings.Contains(err.Error(), "operation not supported") {
			t.Skipf("this kernel lacks 802.1Q VLAN support (CONFIG_VLAN_8021Q): creating a VLAN sub-interface failed (%v); "+
				"TestTwoSubnetsOneAppliance covers one appliance on two subnets with plain interfaces, the QEMU boot test runs this one", err)
		}
		t.Fatalf("create VLAN: %v", err)
	}
}
