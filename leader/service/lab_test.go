package service_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/outpost-appliance/outpost/firmware/netnstest"
	"github.com/outpost-appliance/outpost/firmware/probecmd"
	"github.com/outpost-appliance/outpost/leader/service"
)

// lab is a set of subnets, each a bridge in the router namespace, with
// hosts (namespaces) attached by veth pairs. All addresses are 10.x and
// fd00:x::; nothing leaves the namespaces.
type lab struct {
	t      *testing.T
	router *netnstest.NS
	ports  int
}

func newLab(t *testing.T) *lab {
	t.Helper()
	netnstest.RequireRoot(t)
	l := &lab{t: t, router: netnstest.New(t, "olr")}
	sysctl(t, l.router, "net/ipv4/ip_forward", "1")
	sysctl(t, l.router, "net/ipv6/conf/all/forwarding", "1")
	return l
}

// sysctl writes a namespace's sysctl (/proc/sys/net is per namespace, as
// seen by the writing thread).
func sysctl(t *testing.T, ns *netnstest.NS, key, value string) {
	t.Helper()
	ns.Do(t, func() error { return os.WriteFile("/proc/sys/"+key, []byte(value), 0) })
}

// subnet n is 10.(60+n).0.0/24 and fd00:(60+n)::/64, router .1.
func (l *lab) subnet(n int) {
	t := l.t
	br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: fmt.Sprintf("br%d", n)}, MulticastSnooping: new(bool)}
	h := l.router.Handle
	if err := h.LinkAdd(br); err != nil {
		t.Fatalf("bridge: %v", err)
	}
	if err := h.LinkSetUp(br); err != nil {
		t.Fatal(err)
	}
	l.router.AddAddr(t, br.Name, fmt.Sprintf("10.%d.0.1/24", 60+n))
	addNoDAD(t, l.router, br.Name, fmt.Sprintf("fd00:%d::1/64", 60+n))
}

// host makes a namespace with one interface per (subnet, host number)
// pair, named eth0, eth1, …, addressed 10.(60+subnet).0.host.
func (l *lab) host(prefix string, attach ...[2]int) *netnstest.NS {
	t := l.t
	ns := netnstest.New(t, prefix)
	sysctl(t, ns, "net/ipv6/conf/all/accept_dad", "0")
	sysctl(t, ns, "net/ipv6/conf/default/accept_dad", "0")
	for i, a := range attach {
		subnet, host := a[0], a[1]
		l.ports++
		outer := fmt.Sprintf("p%d", l.ports)
		ifname := fmt.Sprintf("eth%d", i)
		netnstest.Veth(t, l.router, outer, ns, ifname)
		br, err := l.router.Handle.LinkByName(fmt.Sprintf("br%d", subnet))
		if err != nil {
			t.Fatal(err)
		}
		port, _ := l.router.Handle.LinkByName(outer)
		if err := l.router.Handle.LinkSetMaster(port, br); err != nil {
			t.Fatal(err)
		}
		ns.AddAddr(t, ifname, fmt.Sprintf("10.%d.0.%d/24", 60+subnet, host))
		addNoDAD(t, ns, ifname, fmt.Sprintf("fd00:%d::%d/64", 60+subnet, host))
		if i == 0 {
			link, _ := ns.Handle.LinkByName(ifname)
			gw := net.ParseIP(fmt.Sprintf("10.%d.0.1", 60+subnet))
			if err := ns.Handle.RouteAdd(&netlink.Route{LinkIndex: link.Attrs().Index, Gw: gw}); err != nil {
				t.Fatalf("default route: %v", err)
			}
			gw6 := net.ParseIP(fmt.Sprintf("fd00:%d::1", 60+subnet))
			if err := ns.Handle.RouteAdd(&netlink.Route{LinkIndex: link.Attrs().Index, Gw: gw6}); err != nil {
				t.Fatalf("default IPv6 route: %v", err)
			}
		}
	}
	return ns
}

func addNoDAD(t *testing.T, ns *netnstest.NS, link, cidr string) {
	t.Helper()
	l, err := ns.Handle.LinkByName(link)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := netlink.ParseAddr(cidr)
	a.Flags = unix.IFA_F_NODAD
	if err := ns.Handle.AddrAdd(l, a); err != nil {
		t.Fatalf("add %s: %v", cidr, err)
	}
}

func ip(subnet, host int) string { return fmt.Sprintf("10.%d.0.%d", 60+subnet, host) }

// child is a running lab actor.
type child struct {
	t      *testing.T
	name   string
	cmd    *exec.Cmd
	stdin  *os.File
	out    *bufio.Reader
	stderr *bytes.Buffer
	mu     sync.Mutex
}

func childCmd(ctx context.Context, ns *netnstest.NS, role string, params any) *exec.Cmd {
	b, _ := json.Marshal(params)
	cmd := ns.Command(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envRole+"="+role, envParams+"="+string(b))
	return cmd
}

// start runs a long-lived actor (leader, peer) and waits for READY.
func start(t *testing.T, ns *netnstest.NS, name, role string, params any) *child {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := childCmd(ctx, ns, role, params)
	inR, inW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdin = inR
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	c := &child{t: t, name: name, cmd: cmd, stdin: inW, out: bufio.NewReader(stdout), stderr: &bytes.Buffer{}}
	cmd.Stderr = &lockedWriter{w: c.stderr, mu: &c.mu}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	inR.Close()
	t.Cleanup(func() {
		inW.Close() // EOF: the child stops
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cancel()
			<-done
		}
		cancel()
		if t.Failed() || testing.Verbose() {
			c.mu.Lock()
			t.Logf("--- %s log (last 6 KiB) ---\n%s", name, tail(c.stderr.String(), 6<<10))
			c.mu.Unlock()
		}
	})
	ready := make(chan error, 1)
	go func() {
		line, err := c.out.ReadString('\n')
		if err == nil && strings.TrimSpace(line) != "READY" {
			err = fmt.Errorf("said %q", line)
		}
		ready <- err
	}()
	select {
	case err := <-ready:
		if err != nil {
			c.mu.Lock()
			defer c.mu.Unlock()
			t.Fatalf("%s did not start: %v\n%s", name, err, tail(c.stderr.String(), 4<<10))
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("%s not ready after 30 s", name)
	}
	return c
}

// stats asks a leader child for its counters.
func (c *child) stats() service.Stats {
	c.t.Helper()
	if _, err := fmt.Fprintln(c.stdin, "stats"); err != nil {
		c.t.Fatalf("%s: %v", c.name, err)
	}
	line, err := c.out.ReadString('\n')
	if err != nil {
		c.t.Fatalf("%s stats: %v", c.name, err)
	}
	var s service.Stats
	if err := json.Unmarshal([]byte(line), &s); err != nil {
		c.t.Fatalf("%s stats %q: %v", c.name, line, err)
	}
	return s
}

type lockedWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// run runs a short-lived actor (probe, get, flood) to completion.
func run(t *testing.T, ns *netnstest.NS, role string, params any) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := childCmd(ctx, ns, role, params)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s: %v", role, err)
	}
	if code != 0 && testing.Verbose() {
		t.Logf("%s exit %d: %s", role, code, tail(stderr.String(), 2<<10))
	}
	return stdout.String(), code
}

// writeCI writes content information for a client to use.
func writeCI(t *testing.T, c Content) (string, []byte) {
	t.Helper()
	data, ci, err := c.Generate()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := ci.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), fmt.Sprintf("c%d.ci", c.Seed))
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chmod(filepath.Dir(path), 0o755)
	return path, data
}

// probe runs `outpost probe --json` in ns and decodes the result.
func probe(t *testing.T, ns *netnstest.NS, iface, ciPath string, extra ...string) (*probecmd.Result, int) {
	t.Helper()
	args := append([]string{"--iface", iface, "--ci", ciPath, "--json", "--wait", "700ms", "--no-repeat"}, extra...)
	out, code := run(t, ns, "probe", args)
	var res probecmd.Result
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("probe output %q: %v", out, err)
	}
	return &res, code
}

// get runs `outpost get` in ns and returns the fetched bytes.
func get(t *testing.T, ns *netnstest.NS, from, ciPath string) ([]byte, error) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "got")
	if _, code := run(t, ns, "get", []string{"--from", from, "--ci", ciPath, "-o", out, "--timeout", "5s"}); code != 0 {
		return nil, fmt.Errorf("outpost get exit %d", code)
	}
	return os.ReadFile(out)
}

// xaddrs lists every XAddrs of every answer about every segment.
func xaddrs(res *probecmd.Result) map[string]int {
	m := map[string]int{}
	for _, s := range res.Segments {
		for _, a := range s.Matches {
			for _, x := range a.XAddrs {
				m[x]++
			}
		}
	}
	return m
}

func leaderParams(t *testing.T, ifaces ...string) LeaderParams {
	dir := t.TempDir()
	return LeaderParams{Interfaces: ifaces, DataDir: dir, RatePerSrc: 100}
}

var errNotSupported = unix.EOPNOTSUPP

// answeredAt reports whether every answer names host on subnet, over
// either family, at port, and there is at least one.
func answeredAt(res *probecmd.Result, subnet, host, port int) bool {
	xa := xaddrs(res)
	v4 := fmt.Sprintf("%s:%d", ip(subnet, host), port)
	v6 := fmt.Sprintf("[fd00:%d::%d]:%d", 60+subnet, host, port)
	for x := range xa {
		if x != v4 && x != v6 {
			return false
		}
	}
	return len(xa) > 0
}
