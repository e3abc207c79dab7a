package probexdp

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/outpost-appliance/outpost/firmware/netnstest"
	"github.com/outpost-appliance/outpost/leader/discovery"
	"github.com/outpost-appliance/outpost/leader/prober"
	"github.com/outpost-appliance/outpost/peerdist/pccrd"
)

// heldSet is a discovery.Holdings over a fixed set of segments.
type heldSet map[[SegmentIDSize]byte]bool

func (h heldSet) Holding(_ context.Context, id []byte) discovery.Holding {
	if len(id) == SegmentIDSize && h[[SegmentIDSize]byte(id)] {
		return discovery.Holding{Where: discovery.Local, Blocks: 3, Complete: true}
	}
	return discovery.Holding{}
}

// setTxChecksum switches a link's transmit checksum offload (run inside
// its namespace). With it on, a veth hands packets over with a partial
// UDP checksum, which the program cannot verify.
func setTxChecksum(name string, on bool) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	value := struct{ cmd, data uint32 }{cmd: unix.ETHTOOL_STXCSUM}
	if on {
		value.data = 1
	}
	var ifr struct {
		name [unix.IFNAMSIZ]byte
		data unsafe.Pointer
		_    [16]byte
	}
	copy(ifr.name[:], name)
	ifr.data = unsafe.Pointer(&value)
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&ifr))); errno != 0 {
		return errno
	}
	return nil
}

// ipv6Setup makes IPv6 addresses usable at once and kept over a link
// going down and up (as the leader's are with a static configuration).
func ipv6Setup(t *testing.T, ns *netnstest.NS) {
	ns.Do(t, func() error {
		for _, k := range []string{"all", "default"} {
			for key, value := range map[string]string{"accept_dad": "0", "keep_addr_on_down": "1"} {
				if err := os.WriteFile("/proc/sys/net/ipv6/conf/"+k+"/"+key, []byte(value), 0); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// liveChild is the environment variable that makes the test binary the
// live test's leader, run inside the leader's namespace.
const liveChild = "OUTPOST_XDP_LIVE_LEADER"

// liveStatus is what the leader child reports.
type liveStatus struct {
	XDP       InterfaceStatus
	Index     int
	Responder []discovery.InterfaceStats
}

// TestLiveLeader is the live test's leader (a child process in its
// namespace, so that every thread sees that namespace's interfaces): the
// program on l0 with a responder beside it. It reports its status for
// each line read from stdin and stops at EOF.
func TestLiveLeader(t *testing.T) {
	if os.Getenv(liveChild) == "" {
		t.Skip("the live test's leader process (run by TestLive)")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	heldID := bytes.Repeat([]byte{0xa1}, 32)
	prog, err := Load(Options{RatePerSource: 1000})
	if err != nil {
		t.Fatal(err)
	}
	defer prog.Close()
	if err := prog.putHeld(heldID); err != nil {
		t.Fatal(err)
	}
	prog.setFlag(flagHeldSynced, true)
	prog.setFlag(flagPeerSynced, true)
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	resp, err := discovery.Listen(ctx, discovery.Config{Interfaces: []string{"l0"}, Holdings: heldSet{[32]byte(heldID): true},
		PeerPort: 1337, ReplyDelayMin: time.Millisecond, ReplyDelayMax: 5 * time.Millisecond, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	wg.Go(func() { resp.Serve(ctx) })
	wg.Go(func() {
		prog.ReadProbes(ctx, func(p Probe) { resp.HandleCaptured(p.PCCRD(), p.Src, p.IfIndex) })
	})
	mgr := NewManager(prog, ManagerConfig{Interfaces: []string{"l0"}, Mode: Auto, Recheck: 100 * time.Millisecond, Logger: log})
	mgr.Reconcile()
	wg.Go(func() { mgr.Run(ctx) })
	fmt.Println("READY")
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		st := liveStatus{XDP: mgr.Status()["l0"], Responder: resp.Stats()}
		mgr.mu.Lock()
		if a := mgr.attached["l0"]; a != nil {
			st.Index = a.Index
		}
		mgr.mu.Unlock()
		b, _ := json.Marshal(st)
		fmt.Println(string(b))
	}
}

// The program attached on a veth in a namespace, a responder beside it,
// a prober in another namespace: probes for held segments are answered
// through the ring buffer, probes for others are dropped, the counters
// say so; the attachment survives the link going down and up, follows an
// interface recreated under a new index, and with checksum offload on
// (partial checksums) the socket path answers instead, identically.
func TestLive(t *testing.T) {
	requireBPF(t)
	netnstest.RequireRoot(t)
	if os.Getenv(liveChild) != "" {
		t.Skip("in the leader child")
	}
	client, leader := netnstest.New(t, "oxc"), netnstest.New(t, "oxl")
	ipv6Setup(t, client)
	ipv6Setup(t, leader)
	netnstest.Veth(t, client, "c0", leader, "l0")
	client.AddAddr(t, "c0", "10.62.0.1/24")
	leader.AddAddr(t, "l0", "10.62.0.2/24")
	leader.AddAddr(t, "l0", "fd00:62::2/64")
	heldID, unheldID := bytes.Repeat([]byte{0xa1}, 32), bytes.Repeat([]byte{0xb2}, 32)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := leader.Command(ctx, os.Args[0], "-test.run=^TestLiveLeader$", "-test.count=1")
	cmd.Env = append(os.Environ(), liveChild+"=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		stdin.Close()
		cmd.Wait()
		if t.Failed() {
			t.Logf("leader log:\n%s", stderr.String())
		}
	}()
	out := bufio.NewScanner(stdout)
	if !out.Scan() || out.Text() != "READY" {
		t.Fatalf("leader did not start: %q", out.Text())
	}
	status := func() liveStatus {
		t.Helper()
		fmt.Fprintln(stdin, "status")
		var st liveStatus
		if !out.Scan() {
			t.Fatal("leader gone")
		}
		if err := json.Unmarshal(out.Bytes(), &st); err != nil {
			t.Fatalf("status %q: %v", out.Text(), err)
		}
		return st
	}
	if st := status(); st.XDP.Mode != Native {
		t.Fatalf("l0: %+v, want native mode (veth supports it)", st.XDP)
	}

	var pr *prober.Prober
	client.Do(t, func() error {
		c0, err := net.InterfaceByName("c0")
		if err != nil {
			return err
		}
		pr, err = prober.Open(ctx, prober.Options{Interfaces: []int{c0.Index}})
		return err
	})
	defer pr.Close()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	var mu sync.Mutex
	answers := map[string][]string{} // probe MessageID -> XAddrs
	wg.Go(func() {
		pr.Receive(ctx, func(m prober.Match) {
			mu.Lock()
			answers[m.Match.RelatesTo] = append(answers[m.Match.RelatesTo], m.Match.XAddrs...)
			mu.Unlock()
		})
	})
	// probe sends one probe per family for id and reports the XAddrs of
	// the answers to each.
	probe := func(id []byte) (v4, v6 []string) {
		t.Helper()
		var ids [2]string
		for i, ipv6 := range []bool{false, true} {
			p := &pccrd.Probe{MessageID: pccrd.NewMessageID(), Version: pccrd.V1, SegmentIDs: [][]byte{id}}
			ids[i] = p.MessageID
			if err := pr.SendFamily(p, ipv6); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(300 * time.Millisecond)
		mu.Lock()
		defer mu.Unlock()
		return answers[ids[0]], answers[ids[1]]
	}
	wantAnswer := func(what string, v4, v6 []string) {
		t.Helper()
		if len(v4) != 1 || v4[0] != "10.62.0.2:1337" || len(v6) != 1 || v6[0] != "[fd00:62::2]:1337" {
			t.Fatalf("%s: answers %v (IPv4) and %v (IPv6), want one each naming the leader; leader %+v", what, v4, v6, status())
		}
	}

	client.Do(t, func() error { return setTxChecksum("c0", false) })
	const rounds = 3
	for range rounds {
		v4, v6 := probe(heldID)
		wantAnswer("held segment", v4, v6)
		if v4, v6 := probe(unheldID); len(v4)+len(v6) != 0 {
			t.Fatalf("unheld segment answered: %v %v", v4, v6)
		}
	}
	st := status()
	if c := st.XDP.Counters; c.Captured != 2*rounds || c.CapturedHeld != 2*rounds || c.DropNotHeld != 2*rounds || c.PassChecksum != 0 {
		t.Fatalf("counters %+v: want %d captured (held) and %d dropped", c, 2*rounds, 2*rounds)
	}
	if r := st.Responder; len(r) != 1 || r[0].Captured != 2*rounds || r[0].ProbesAnswered != 2*rounds {
		t.Fatalf("responder stats %+v", r)
	}

	// Down and up: XDP stays on the device.
	l0, err := leader.Handle.LinkByName("l0")
	if err == nil {
		err = leader.Handle.LinkSetDown(l0)
	}
	if err == nil {
		err = leader.Handle.LinkSetUp(l0)
	}
	if err != nil {
		t.Fatal(err)
	}
	// Carrier back, a recheck done, and IPv6 routing restored (the
	// kernel re-adds the link's routes a moment after it is up).
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		routes, _ := leader.Handle.RouteList(l0, netlink.FAMILY_V6)
		ll, global := false, false
		for _, r := range routes {
			if r.Dst != nil {
				ll = ll || r.Dst.String() == "fe80::/64"
				global = global || r.Dst.String() == "fd00:62::/64"
			}
		}
		if ll && global {
			break
		}
	}
	time.Sleep(200 * time.Millisecond)
	if st := status(); st.XDP.Mode != Native || st.Index != l0.Attrs().Index {
		t.Fatalf("after down/up: %+v", st)
	}
	v4, v6 := probe(heldID)
	wantAnswer("held segment after down/up", v4, v6)
	if c := status().XDP.Counters; c.Captured != 2*rounds+2 {
		t.Fatalf("after down/up: counters %+v, want %d captured", c, 2*rounds+2)
	}

	// Partial checksums: the program passes, the socket path answers
	// the same.
	client.Do(t, func() error { return setTxChecksum("c0", true) })
	v4, v6 = probe(heldID)
	wantAnswer("held segment with checksum offload", v4, v6)
	if c := status().XDP.Counters; c.PassChecksum != 2 || c.Captured != 2*rounds+2 {
		t.Fatalf("with checksum offload: counters %+v, want 2 passed for their checksum", c)
	}

	// Recreated under a new index: attached again, counters kept.
	if err := leader.Handle.LinkDel(l0); err != nil {
		t.Fatal(err)
	}
	netnstest.Veth(t, client, "c0", leader, "l0")
	l0, err = leader.Handle.LinkByName("l0")
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if st := status(); st.XDP.Mode != Native || st.Index != l0.Attrs().Index || st.XDP.Counters.Captured != 2*rounds+2 {
		t.Fatalf("after the interface was recreated (index %d): %+v", l0.Attrs().Index, st)
	}
}
