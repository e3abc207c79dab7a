package pid1

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/u-root/u-root/pkg/mount/loop"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/outpost-appliance/outpost/firmware/api"
	"github.com/outpost-appliance/outpost/firmware/netnstest"
)

// bootEnv makes this test binary, started as "init" in fresh namespaces,
// run Main instead of the tests.
const bootEnv = "OUTPOST_PID1_TEST"

func TestMain(m *testing.M) {
	if os.Getenv(bootEnv) == "boot" && IsInit() {
		Main("pid1-test") // never returns; its power-off ends the namespace
	}
	os.Exit(m.Run())
}

// syncBuffer collects a child's console while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestBootAsPID1 runs the real init — Main, as PID 1 — twice, short of
// the QEMU boot test: in new PID, mount, network and UTS namespaces (so
// its mounts, host name, network and power-off stay there), with /etc on a
// tmpfs holding outpost.toml, and the data partition an ext4 image labelled
// OUTPOST-DATA on a loop device. The test gives it a network interface,
// reads its status over the API, powers it off with SIGTERM, then checks
// what it left on the data partition and that a second boot carries on.
func TestBootAsPID1(t *testing.T) {
	netnstest.RequireRoot(t)
	for _, tool := range []string{"unshare", "mkfs.ext4"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not found: apt-get install util-linux e2fsprogs", tool)
		}
	}
	if fs, err := FindByLabel(DataLabel); err == nil {
		t.Skipf("this machine already has a filesystem labelled %s (%s); not booting a test init beside it", DataLabel, fs.Device)
	}
	dir := t.TempDir()
	img := filepath.Join(dir, "data.img")
	os.WriteFile(img, nil, 0o644)
	if err := os.Truncate(img, 64<<20); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", "-L", DataLabel, img).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v\n%s", err, out)
	}
	lp, err := loop.New(img, "ext4", "")
	if err != nil {
		t.Skipf("no loop device available: %v", err)
	}
	defer lp.Free()
	if _, err := os.Stat(DataDir); os.IsNotExist(err) {
		// Main creates the mount point on the shared root filesystem.
		defer os.Remove(DataDir)
	}

	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	initPath := filepath.Join(dir, "init")
	if err := os.Symlink(exe, initPath); err != nil {
		t.Fatal(err)
	}
	peer := netnstest.New(t, "ot-lan")

	for boot := 1; boot <= 2; boot++ {
		console := bootOnce(t, initPath, peer, boot)
		if !strings.Contains(console, "partition mounted") || !strings.Contains(console, "unmounting and powering off") {
			t.Errorf("boot %d console:\n%s", boot, console)
		}
	}

	// What the two boots left on the data partition.
	mnt := t.TempDir()
	if err := unix.Mount(lp.Dev, mnt, "ext4", unix.MS_RDONLY, ""); err != nil {
		t.Fatal(err)
	}
	defer unix.Unmount(mnt, 0)
	ring, err := os.ReadFile(filepath.Join(mnt, RingDir, "outpost.log"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"msg":"outpost init starting"`, `"msg":"outpost ready"`, `"msg":"unmounting and powering off"`} {
		if n := strings.Count(string(ring), want); n != 2 {
			t.Errorf("the log ring holds %d × %s, want one per boot:\n%s", n, want, ring)
		}
	}
	if saved, err := LoadClock(filepath.Join(mnt, ClockFile)); err != nil || time.Since(saved) > time.Minute {
		t.Errorf("last known time %v, %v", saved, err)
	}
	if st, err := os.Stat(filepath.Join(mnt, SeedFile)); err != nil || st.Size() != seedSize {
		t.Errorf("entropy seed: %v", err)
	}
}

// bootOnce boots the init, checks its status over the API, powers it off
// and returns its console output.
func bootOnce(t *testing.T, initPath string, peer *netnstest.NS, boot int) string {
	t.Helper()
	const conf = `hostname = "pid1-test"
[time]
ntp = []
[[interface]]
name = "ot-eth0"
address = ["10.79.0.2/24"]
gateway = ["10.79.0.1"]
`
	script := "mount -t tmpfs tmpfs /etc && cat > /etc/outpost.toml <<'EOF'\n" + conf + "EOF\nexec " + initPath
	cmd := exec.Command("unshare", "--mount", "--pid", "--fork", "--net", "--uts", "sh", "-c", script)
	cmd.Env = append(os.Environ(), bootEnv+"=boot")
	var console syncBuffer
	cmd.Stdout, cmd.Stderr = &console, &console
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	fail := func(format string, args ...any) {
		t.Helper()
		cmd.Process.Kill()
		<-done
		t.Fatalf("boot %d: %s\nconsole:\n%s", boot, fmt.Sprintf(format, args...), console.String())
	}

	// The init is unshare's child: give it its network interface.
	pid := 0
	for deadline := time.Now().Add(5 * time.Second); pid == 0 && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		children, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", cmd.Process.Pid, cmd.Process.Pid))
		pid, _ = strconv.Atoi(strings.TrimSpace(string(children)))
	}
	if pid == 0 {
		fail("no init process")
	}
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "ot-lan0"}, PeerName: "ot-eth0", PeerNamespace: netlink.NsPid(pid)}
	if err := peer.Handle.LinkAdd(veth); err != nil {
		fail("veth: %v", err)
	}
	defer func() {
		if l, err := peer.Handle.LinkByName("ot-lan0"); err == nil {
			peer.Handle.LinkDel(l)
		}
	}()
	l, _ := peer.Handle.LinkByName("ot-lan0")
	peer.Handle.LinkSetUp(l)
	if boot == 1 {
		peer.AddAddr(t, "ot-lan0", "10.79.0.1/24")
	} else {
		addr, _ := netlink.ParseAddr("10.79.0.1/24")
		peer.Handle.AddrReplace(l, addr)
	}

	for deadline := time.Now().Add(20 * time.Second); !strings.Contains(console.String(), `msg="outpost ready"`); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			fail("never ready")
		}
	}
	st, err := statusFrom(t, peer, "10.79.0.2:9000")
	if err != nil {
		fail("status: %v", err)
	}
	if st.Mode != api.ModeAppliance || st.Hostname != "pid1-test" || !st.Ready || st.Config.Source != BuiltIn || st.Config.SafeMode || len(st.Notices) != 0 {
		fail("status %+v", st)
	}
	var eth *api.Interface
	for i := range st.Interfaces {
		if st.Interfaces[i].Name == "ot-eth0" {
			eth = &st.Interfaces[i]
		}
	}
	if eth == nil || !eth.Up || !eth.Configured || !strings.Contains(strings.Join(eth.Addresses, " "), "10.79.0.2/24") {
		fail("interface %+v", eth)
	}

	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		fail("SIGTERM: %v", err)
	}
	select {
	case <-done: // the power-off ended the PID namespace
	case <-time.After(20 * time.Second):
		fail("did not power off")
	}
	return console.String()
}

// statusFrom reads GET /api/v1/status through the test's end of the LAN.
func statusFrom(t *testing.T, peer *netnstest.NS, addr string) (*api.Status, error) {
	var conn net.Conn
	peer.Do(t, func() (err error) {
		conn, err = net.DialTimeout("tcp", addr, 5*time.Second)
		return err
	})
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(conn, "GET %sstatus HTTP/1.0\r\nHost: outpost\r\n\r\n", api.Prefix)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var st api.Status
	return &st, json.NewDecoder(resp.Body).Decode(&st)
}
