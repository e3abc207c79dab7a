// Package netnstest gives tests throwaway network namespaces joined by veth
// pairs, so that code which configures interfaces, creates VLANs or runs
// DHCP can be exercised for real without touching the host's network. The
// namespaces are removed when the test ends. Tests using it need root; they
// skip with a message saying so otherwise.
package netnstest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// RequireRoot skips the test unless it runs as root (CI runs as root).
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create network namespaces (CI runs as root): run `sudo go test` to include it")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs the ip command to run a process in a namespace: apt-get install iproute2")
	}
}

// NS is a named network namespace (as `ip netns add` makes).
type NS struct {
	Name string
	// Handle configures the namespace over netlink from the test.
	Handle *netlink.Handle
	ns     netns.NsHandle
}

var seq atomic.Int64

// New creates a namespace with lo up, removed at the end of the test.
func New(t testing.TB, prefix string) *NS {
	t.Helper()
	RequireRoot(t)
	name := fmt.Sprintf("%s-%d-%d", prefix, os.Getpid(), seq.Add(1))
	var ns netns.NsHandle
	err := onLockedThread(func() error {
		orig, err := netns.Get()
		if err != nil {
			return err
		}
		defer orig.Close()
		ns, err = netns.NewNamed(name) // switches this thread into it
		if err != nil {
			return err
		}
		return netns.Set(orig)
	})
	if err != nil {
		t.Fatalf("netnstest: create namespace %s: %v", name, err)
	}
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatalf("netnstest: netlink handle in %s: %v", name, err)
	}
	n := &NS{Name: name, Handle: h, ns: ns}
	t.Cleanup(func() {
		h.Close()
		ns.Close()
		if err := netns.DeleteNamed(name); err != nil {
			t.Errorf("netnstest: delete namespace %s: %v", name, err)
		}
	})
	lo, err := h.LinkByName("lo")
	if err == nil {
		err = h.LinkSetUp(lo)
	}
	if err != nil {
		t.Fatalf("netnstest: lo up in %s: %v", name, err)
	}
	return n
}

// onLockedThread runs fn on a goroutine locked to its OS thread. If fn
// fails, the thread may be left in another namespace, so it is not
// unlocked: the runtime then discards it.
func onLockedThread(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		err := fn()
		if err == nil {
			runtime.UnlockOSThread()
		}
		errc <- err
	}()
	return <-errc
}

// Do runs fn with the calling goroutine's network namespace set to n's
// (on a locked thread): sockets fn opens belong to n, and stay there when
// used from other goroutines later.
func (n *NS) Do(t testing.TB, fn func() error) {
	t.Helper()
	err := onLockedThread(func() error {
		orig, err := netns.Get()
		if err != nil {
			return err
		}
		defer orig.Close()
		if err := netns.Set(n.ns); err != nil {
			return err
		}
		fnErr := fn()
		if err := netns.Set(orig); err != nil {
			return err
		}
		return fnErr
	})
	if err != nil {
		t.Fatalf("netnstest: in %s: %v", n.Name, err)
	}
}

// Command returns a command that runs name with args inside n (through
// `ip netns exec`), so that the whole process — all its threads — sees
// only n's interfaces.
func (n *NS) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", n.Name, name}, args...)...)
}

// Veth creates a veth pair with one end, aName, in a and the other, bName,
// in b, both up. The ends never appear in the host's namespace.
func Veth(t testing.TB, a *NS, aName string, b *NS, bName string) {
	t.Helper()
	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: aName},
		PeerName:      bName,
		PeerNamespace: netlink.NsFd(b.ns),
	}
	if err := a.Handle.LinkAdd(veth); err != nil {
		t.Fatalf("netnstest: veth %s/%s: %v", aName, bName, err)
	}
	for _, end := range []struct {
		ns   *NS
		name string
	}{{a, aName}, {b, bName}} {
		l, err := end.ns.Handle.LinkByName(end.name)
		if err == nil {
			err = end.ns.Handle.LinkSetUp(l)
		}
		if err != nil {
			t.Fatalf("netnstest: %s up: %v", end.name, err)
		}
	}
}

// AddAddr adds an address ("10.77.0.1/24") to a link in n.
func (n *NS) AddAddr(t testing.TB, link, cidr string) {
	t.Helper()
	l, err := n.Handle.LinkByName(link)
	if err != nil {
		t.Fatalf("netnstest: %s: %v", link, err)
	}
	addr, err := netlink.ParseAddr(cidr)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Handle.AddrAdd(l, addr); err != nil {
		t.Fatalf("netnstest: add %s to %s: %v", cidr, link, err)
	}
}
