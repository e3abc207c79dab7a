package netconf

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/server4"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/outpost-appliance/outpost/firmware/config"
	"github.com/outpost-appliance/outpost/firmware/netnstest"
)

// The network code changes the network of the process that runs it, as
// PID 1 does. So the tests run it in a child process (this test binary
// again, selected by the environment) that `ip netns exec` puts wholly in
// a throwaway namespace, and check the result from here over netlink.
// Addresses are 10.77.x and 10.78.x, inside the namespaces only.

const (
	childEnv     = "OUTPOST_NETCONF_CHILD" // which child to run
	childArgsEnv = "OUTPOST_NETCONF_ARGS"  // its JSON arguments
)

type childArgs struct {
	Config  string // outpost.toml text
	Resolv  string // resolv.conf path
	Dial    string // address to reach over the configured network
	Leases  int    // DHCP: leases (first + renewals) to wait for
	Timeout time.Duration
}

// runChild runs the named child in ns and returns its output.
func runChild(t *testing.T, ns *netnstest.NS, child string, args childArgs) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	js, _ := json.Marshal(args)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := ns.Command(ctx, exe, "-test.run=^TestChild$", "-test.v")
	cmd.Env = append(os.Environ(), childEnv+"="+child, childArgsEnv+"="+string(js))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child %s in %s: %v\n%s", child, ns.Name, err, out)
	}
	return string(out)
}

// TestChild is the child process's entry point; it does nothing in a
// normal run.
func TestChild(t *testing.T) {
	which := os.Getenv(childEnv)
	if which == "" {
		t.Skip("runs only as the child process of the namespace tests")
	}
	var args childArgs
	if err := json.Unmarshal([]byte(os.Getenv(childArgsEnv)), &args); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithTimeout(context.Background(), args.Timeout)
	defer cancel()
	switch which {
	case "static":
		childStatic(ctx, t, args, log)
	case "dhcp":
		childDHCP(ctx, t, args, log)
	}
}

func childStatic(ctx context.Context, t *testing.T, args childArgs, log *slog.Logger) {
	cfg, err := config.Parse([]byte(args.Config), "test.toml", "")
	if err != nil {
		t.Fatal(err)
	}
	if err := Loopback(); err != nil {
		t.Fatal(err)
	}
	opts := Options{LinkTimeout: 2 * time.Second, Resolv: NewResolv(args.Resolv), Logger: log}
	// Twice: configuring is idempotent (a VLAN that exists is reused).
	for i := 0; i < 2; i++ {
		fmt.Printf("apply-error=%v\n", Apply(ctx, cfg.Interfaces, opts))
	}
	first, err := FirstEthernet(ctx, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("first-ethernet=%s\n", first)
	// The VLAN really carries traffic: reach the peer's VLAN address.
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", args.Dial)
	if err != nil {
		t.Fatalf("dial %s over the VLAN: %v", args.Dial, err)
	}
	line, _ := bufio.NewReader(conn).ReadString('\n')
	conn.Close()
	fmt.Printf("peer-said=%s", line)
	// A missing interface is reported, the others still configured.
	err = Apply(ctx, []config.Interface{{Name: "nosuch0", Role: config.RoleLAN}}, Options{LinkTimeout: 200 * time.Millisecond, Logger: log})
	fmt.Printf("missing-error=%v\n", err)
}

func childDHCP(ctx context.Context, t *testing.T, args childArgs, log *slog.Logger) {
	cfg, err := config.Parse([]byte(args.Config), "test.toml", "")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var mu sync.Mutex
	var leases []string
	d := &DHCP{
		Interface: cfg.Interfaces[0].LinkName(),
		Hostname:  cfg.Hostname,
		Options:   Options{LinkTimeout: 2 * time.Second, Resolv: NewResolv(args.Resolv), Logger: log},
		OnLease: func(ack *dhcpv4.DHCPv4) {
			mu.Lock()
			defer mu.Unlock()
			leases = append(leases, ack.YourIPAddr.String())
			if len(leases) == args.Leases {
				cancel()
			}
		},
	}
	readyCalled := false
	err = d.Run(ctx, func() { readyCalled = true })
	if err != nil || !readyCalled {
		t.Fatalf("Run = %v, ready called: %v", err, readyCalled)
	}
	if ctx.Err() != context.Canceled {
		t.Fatalf("ended without %d leases: %v", args.Leases, leases)
	}
	fmt.Printf("leases=%s\n", strings.Join(leases, ","))
}

func TestStaticAddressesAndVLAN(t *testing.T) {
	box := netnstest.New(t, "ot-box")
	peer := netnstest.New(t, "ot-peer")
	netnstest.Veth(t, box, "ot0", peer, "ot1")
	peer.AddAddr(t, "ot1", "10.77.0.1/24")

	// The peer's side of VLAN 42, with a listener the box must reach over
	// it. Kernels without 802.1Q (this machine kind's host kernel is built
	// without CONFIG_VLAN_8021Q) refuse VLANs: then the box must report the
	// VLAN entry's error and still configure the rest.
	parent, err := peer.Handle.LinkByName("ot1")
	if err != nil {
		t.Fatal(err)
	}
	listenOn := "10.77.0.1"
	err = peer.Handle.LinkAdd(&netlink.Vlan{LinkAttrs: netlink.LinkAttrs{Name: "ot1.42", ParentIndex: parent.Attrs().Index}, VlanId: 42})
	vlans := err == nil
	switch {
	case vlans:
		v, _ := peer.Handle.LinkByName("ot1.42")
		if err := peer.Handle.LinkSetUp(v); err != nil {
			t.Fatal(err)
		}
		peer.AddAddr(t, "ot1.42", "10.77.42.1/24")
		listenOn = "10.77.42.1"
	case errors.Is(err, unix.EOPNOTSUPP):
		t.Log("this kernel has no 802.1Q VLAN support (CONFIG_VLAN_8021Q): checking that the VLAN entry fails alone; " +
			"VLAN creation itself is exercised here on kernels with it, and by the image's QEMU boot test")
	default:
		t.Fatal(err)
	}
	var ln net.Listener
	peer.Do(t, func() (err error) { ln, err = net.Listen("tcp4", listenOn+":0"); return err })
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			io.WriteString(c, "hello from "+listenOn+"\n")
			c.Close()
		}
	}()

	resolv := filepath.Join(t.TempDir(), "resolv.conf")
	out := runChild(t, box, "static", childArgs{
		Config: `
[[interface]]
name = "ot0"
vlan = 42
address = ["10.77.42.2/24"]
role = "lan"
[[interface]]
name = "ot0"
address = ["10.77.0.2/24", "2001:db8:77::2/64"]
gateway = ["10.77.0.1"]
dns = ["10.77.0.1"]
`,
		Resolv:  resolv,
		Dial:    ln.Addr().String(),
		Timeout: 20 * time.Second,
	})
	want := []string{"first-ethernet=ot0", "peer-said=hello from " + listenOn, `missing-error=netconf: interface "nosuch0": no interface nosuch0 after 200ms`}
	if vlans {
		want = append(want, "apply-error=<nil>\napply-error=<nil>\n")
	} else {
		want = append(want, `apply-error=netconf: interface "ot0.42": create VLAN 42 on ot0: operation not supported`)
	}
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("child output lacks %q:\n%s", w, out)
		}
	}

	h := box.Handle
	ot0, err := h.LinkByName("ot0")
	if err != nil {
		t.Fatal(err)
	}
	if ot0.Attrs().Flags&net.FlagUp == 0 {
		t.Error("ot0 is not up")
	}
	if got := addrsOf(t, h, ot0); !slices.Contains(got, "10.77.0.2/24") || !slices.Contains(got, "2001:db8:77::2/64") {
		t.Errorf("ot0 addresses %v", got)
	}
	if gw := defaultGateway(t, h); gw != "10.77.0.1" {
		t.Errorf("default gateway %q", gw)
	}
	if b, _ := os.ReadFile(resolv); !strings.Contains(string(b), "nameserver 10.77.0.1\n") {
		t.Errorf("resolv.conf:\n%s", b)
	}
	t.Run("VLAN", func(t *testing.T) {
		if !vlans {
			t.Skip("the kernel has no 802.1Q VLAN support (CONFIG_VLAN_8021Q is not set)")
		}
		vl, err := h.LinkByName("ot0.42")
		if err != nil {
			t.Fatal(err)
		}
		if v, ok := vl.(*netlink.Vlan); !ok || v.VlanId != 42 || v.ParentIndex != ot0.Attrs().Index {
			t.Errorf("ot0.42 is %#v, want VLAN 42 on ot0", vl)
		}
		if got := addrsOf(t, h, vl); !slices.Equal(got, []string{"10.77.42.2/24"}) {
			t.Errorf("ot0.42 addresses %v", got)
		}
	})
}

func addrsOf(t *testing.T, h *netlink.Handle, l netlink.Link) []string {
	t.Helper()
	addrs, err := h.AddrList(l, netlink.FAMILY_ALL)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, a := range addrs {
		if !a.IP.IsLinkLocalUnicast() {
			out = append(out, a.IPNet.String())
		}
	}
	return out
}

func defaultGateway(t *testing.T, h *netlink.Handle) string {
	t.Helper()
	routes, err := h.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range routes {
		if (r.Dst == nil || r.Dst.IP.IsUnspecified()) && r.Gw != nil {
			return r.Gw.String()
		}
	}
	return ""
}

// dhcpServer is a minimal DHCPv4 server (insomniacslk's server4, which
// u-root's client is built on) that leases one address for 4 s, so the
// client renews within the test.
type dhcpServer struct {
	mu       sync.Mutex
	messages []string // message types received, in order
	hostname string
}

func (s *dhcpServer) handle(conn net.PacketConn, peer net.Addr, m *dhcpv4.DHCPv4) {
	s.mu.Lock()
	s.messages = append(s.messages, m.MessageType().String())
	if h := m.HostName(); h != "" {
		s.hostname = h
	}
	s.mu.Unlock()
	var reply dhcpv4.MessageType
	switch m.MessageType() {
	case dhcpv4.MessageTypeDiscover:
		reply = dhcpv4.MessageTypeOffer
	case dhcpv4.MessageTypeRequest:
		reply = dhcpv4.MessageTypeAck
	default:
		return
	}
	server := net.IPv4(10, 78, 0, 1)
	resp, err := dhcpv4.NewReplyFromRequest(m,
		dhcpv4.WithMessageType(reply),
		dhcpv4.WithYourIP(net.IPv4(10, 78, 0, 50)),
		dhcpv4.WithServerIP(server),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(server)),
		dhcpv4.WithOption(dhcpv4.OptSubnetMask(net.CIDRMask(24, 32))),
		dhcpv4.WithOption(dhcpv4.OptRouter(server)),
		dhcpv4.WithOption(dhcpv4.OptDNS(server)),
		dhcpv4.WithOption(dhcpv4.OptDomainName("branch.test")),
		dhcpv4.WithOption(dhcpv4.OptIPAddressLeaseTime(4*time.Second)),
	)
	if err != nil {
		return
	}
	conn.WriteTo(resp.ToBytes(), peer)
}

func TestDHCPLeaseAndRenewal(t *testing.T) {
	box := netnstest.New(t, "ot-dhcpc")
	lan := netnstest.New(t, "ot-dhcps")
	netnstest.Veth(t, box, "otc0", lan, "ots0")
	lan.AddAddr(t, "ots0", "10.78.0.1/24")

	srv := &dhcpServer{}
	var server *server4.Server
	lan.Do(t, func() (err error) {
		server, err = server4.NewServer("ots0", &net.UDPAddr{IP: net.IPv4zero, Port: dhcpv4.ServerPort}, srv.handle)
		return err
	})
	go server.Serve()
	defer server.Close()

	resolv := filepath.Join(t.TempDir(), "resolv.conf")
	start := time.Now()
	out := runChild(t, box, "dhcp", childArgs{
		Config:  "hostname = \"outpost-test\"\n[[interface]]\nname = \"otc0\"\ndhcp = true\n",
		Resolv:  resolv,
		Leases:  2, // the lease, and its renewal at T1 = 2 s
		Timeout: 30 * time.Second,
	})
	if !strings.Contains(out, "leases=10.78.0.50,10.78.0.50") {
		t.Fatalf("child output:\n%s", out)
	}
	if took := time.Since(start); took < 2*time.Second {
		t.Errorf("renewed after %v, before T1", took)
	}
	srv.mu.Lock()
	msgs, hostname := slices.Clone(srv.messages), srv.hostname
	srv.mu.Unlock()
	if len(msgs) < 3 || msgs[0] != "DISCOVER" || msgs[1] != "REQUEST" || msgs[2] != "REQUEST" {
		t.Errorf("server saw %v, want DISCOVER, REQUEST, then a renewing REQUEST", msgs)
	}
	if hostname != "outpost-test" {
		t.Errorf("hostname option %q", hostname)
	}

	l, err := box.Handle.LinkByName("otc0")
	if err != nil {
		t.Fatal(err)
	}
	addrs, err := box.Handle.AddrList(l, netlink.FAMILY_V4)
	if err != nil || len(addrs) != 1 || addrs[0].IPNet.String() != "10.78.0.50/24" {
		t.Fatalf("otc0 addresses %v, %v", addrs, err)
	}
	if lft := addrs[0].ValidLft; lft <= 0 || lft > 4 {
		t.Errorf("address valid lifetime %d s, want the lease's 4 s", lft)
	}
	if gw := defaultGateway(t, box.Handle); gw != "10.78.0.1" {
		t.Errorf("default gateway %q", gw)
	}
	b, _ := os.ReadFile(resolv)
	if !strings.Contains(string(b), "nameserver 10.78.0.1\n") || !strings.Contains(string(b), "domain branch.test\n") {
		t.Errorf("resolv.conf:\n%s", b)
	}
}

func TestResolvMergesSources(t *testing.T) {
	path := filepath.Join(t.TempDir(), "etc", "resolv.conf")
	r := NewResolv(path)
	if err := r.Set("dhcp:eth0", []net.IP{net.IPv4(10, 0, 0, 1), net.IPv4(10, 0, 0, 2)}, []string{"corp.example"}, "branch.example"); err != nil {
		t.Fatal(err)
	}
	if err := r.Set("static:eth1", []net.IP{net.IPv4(10, 0, 0, 2), net.IPv4(192, 168, 1, 1)}, nil, ""); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := "# written by outpost\nnameserver 10.0.0.2\nnameserver 192.168.1.1\nnameserver 10.0.0.1\ndomain branch.example\nsearch corp.example\n"
	if string(b) != want {
		t.Errorf("resolv.conf:\n%s\nwant:\n%s", b, want)
	}
}
