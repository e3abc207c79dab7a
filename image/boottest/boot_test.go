package boottest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outpost-appliance/outpost/image/build"
	"github.com/outpost-appliance/outpost/image/qemu"
)

// The test's private segment: the namespace's bridge and the guest.
const (
	hostAddr  = "10.77.0.1"
	guestAddr = "10.77.0.2"
	apiToken  = "boottest-token-0123456789"
)

// env is what every step needs.
type env struct {
	t       *testing.T
	ns      string
	outpost string // host build of outpost, run inside the namespace
	dir     string
}

func repoRoot(t *testing.T) string {
	dir, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

func requireTools(t *testing.T, tools ...string) {
	if os.Geteuid() != 0 {
		t.Skip("the boot test needs root (network namespace, tap)")
	}
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (.ci/run installs it)", tool)
		}
	}
}

// scenario is one board's boot test.
type scenario struct {
	name  string // subtest name ("" = board)
	board string
	tool  string // the QEMU binary
	uefi  string // OVMF code: boot the disk image through UEFI and its loader
	full  bool   // offer/get/probe, reboot, persistence, API power-off
	vlan  bool   // eth0 as a trunk with two VLANs, probed with tagged frames
}

// TestBoot boots each QEMU board in its own network namespace. The full
// scenario offers content to the guest's hosted cache (v1 over HTTPS, v2
// over HTTP), reads it back with get and finds it with probe, reboots,
// reads it again from the data partition, and powers off over the API.
func TestBoot(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	requireTools(t, "ip", "depmod", "mkfs.vfat", "mcopy", "mkfs.ext4", "apt-get", "dpkg-deb")
	repo := repoRoot(t)
	dir := t.TempDir()
	host := filepath.Join(dir, "outpost")
	gob := exec.Command("go", "build", "-o", host, "./firmware/cmd/outpost")
	gob.Dir = repo
	if out, err := gob.CombinedOutput(); err != nil {
		t.Fatalf("go build outpost: %v\n%s", err, out)
	}
	tests := []scenario{
		{board: "qemu-amd64", tool: "qemu-system-x86_64", full: true},
		{board: "qemu-arm64", tool: "qemu-system-aarch64", full: true},
		{board: "pc-amd64", tool: "qemu-system-x86_64", uefi: "/usr/share/OVMF/OVMF_CODE.fd"},
		// qemu-amd64's own disk image, through OVMF and systemd-boot.
		{name: "qemu-amd64-uefi", board: "qemu-amd64", tool: "qemu-system-x86_64", uefi: "/usr/share/OVMF/OVMF_CODE.fd"},
		// One box answering on two 802.1Q VLANs of a trunk port.
		{name: "qemu-amd64-vlan", board: "qemu-amd64", tool: "qemu-system-x86_64", vlan: true},
	}
	for _, sc := range tests {
		name := sc.name
		if name == "" {
			name = sc.board
		}
		t.Run(name, func(t *testing.T) {
			if _, err := exec.LookPath(sc.tool); err != nil {
				t.Skipf("%s not installed (.ci/run installs it)", sc.tool)
			}
			if sc.uefi != "" {
				if _, err := os.Stat(sc.uefi); err != nil {
					t.Skipf("UEFI firmware %s not installed", sc.uefi)
				}
			}
			bootBoard(t, repo, host, sc)
		})
	}
}

func bootBoard(t *testing.T, repo, host string, sc scenario) {
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	e := &env{t: t, dir: t.TempDir(), outpost: host}

	start := time.Now()
	r, err := build.Board(ctx, build.Options{Repo: repo, Out: filepath.Join(repo, "build", "boottest"), Cache: filepath.Join(repo, "build", "cache"), Version: "boottest",
		Time: time.Unix(1700000000, 0), Log: slog.New(slog.NewTextHandler(io.Discard, nil))}, sc.board)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("image built in %.1fs", time.Since(start).Seconds())
	disk := filepath.Join(e.dir, "disk.img")
	if out, err := exec.CommandContext(ctx, "cp", "--sparse=always", r.Disk, disk).CombinedOutput(); err != nil {
		t.Fatalf("copy disk: %v\n%s", err, out)
	}
	if sc.full || sc.vlan {
		e.ns = e.netns(ctx)
	}

	m := qemu.Machine{
		Board: r.Board, Kernel: r.Kernel, Initramfs: r.Initramfs, Disk: disk,
		Append: "outpost.interface.0.name=eth0 outpost.interface.0.address=" + guestAddr + "/24 outpost.time.ntp= outpost.api.token=" + apiToken,
		Net:    []string{"-netdev", "tap,id=n0,ifname=tap0,script=no,downscript=no", "-device", "virtio-net-pci,netdev=n0,mac=52:54:00:77:00:02"},
		Prefix: []string{"ip", "netns", "exec", e.ns},
	}
	if sc.vlan {
		m.Append = vlanAppend() + " outpost.time.ntp= outpost.api.token=" + apiToken
	}
	if sc.uefi != "" {
		// The loader entry on the disk carries the command line: DHCP
		// (none answers here) and the built-in defaults.
		vars := filepath.Join(e.dir, "vars.fd")
		if out, err := exec.CommandContext(ctx, "cp", strings.Replace(sc.uefi, "CODE", "VARS", 1), vars).CombinedOutput(); err != nil {
			t.Fatalf("UEFI vars: %v\n%s", err, out)
		}
		m.Kernel, m.Initramfs, m.Append, m.Firmware, m.Vars = "", "", "", sc.uefi, vars
		// QEMU's own DHCP, so the appliance's DHCP service comes up.
		m.Net, m.Prefix = []string{"-netdev", "user,id=n0,restrict=on", "-device", "virtio-net-pci,netdev=n0"}, nil
	}
	var console syncBuffer
	g, err := qemu.Start(ctx, m, &console)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if t.Failed() {
			t.Logf("console:\n%s", console.String())
		}
	}()
	line, next, err := g.WaitFor(ctx, qemu.Ready, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("boot-to-ready %s: %.2fs (%s)", sc.board, time.Since(g.Started()).Seconds(), line)
	if sc.vlan {
		e.vlanTrunk(ctx)
	}
	if !sc.full {
		return // the deferred cancel kills QEMU
	}
	e.idleMemory(ctx)
	breakGlass(ctx, t, g, next)

	content := filepath.Join(e.dir, "content")
	data := make([]byte, 3<<20+12345) // several segments, a partial last block
	rand.Read(data)
	if err := os.WriteFile(content, data, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"1", "2"} {
		e.outpostCmd(ctx, "ci", "hash", "--version", v, "--secret", "boottest", "-o", filepath.Join(e.dir, "v"+v+".ci"), content)
	}
	// The discovery fast path runs in native mode on eth0 (virtio-net).
	e.xdp(ctx, "eth0", func(mode string, _ map[string]uint64) bool { return mode == "native" }, "attached in native mode")

	steps := []struct {
		name  string
		offer []string
		get   []string
	}{
		{"v1-https", []string{"--to", guestAddr + ":443", "--https", "--insecure", "--version", "1"}, []string{"--from", guestAddr + ":1337"}},
		{"v2-http", []string{"--to", guestAddr + ":1339", "--version", "2"}, []string{"--from", guestAddr + ":1339", "--v2-seglist"}},
	}
	check := func(phase string) {
		for _, st := range steps {
			ci := filepath.Join(e.dir, "v"+st.name[1:2]+".ci")
			if phase == "first boot" {
				e.outpostCmd(ctx, append(append([]string{"offer"}, st.offer...), "--ci", ci, "--data", content, "--listen", hostAddr+":0", "--timeout", "90s")...)
			}
			out := filepath.Join(e.dir, "got-"+st.name)
			e.outpostCmd(ctx, append(append([]string{"get"}, st.get...), "--ci", ci, "-o", out)...)
			got, err := os.ReadFile(out)
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("%s, %s: get returned %d bytes, not the offered content (err %v)", phase, st.name, len(got), err)
			}
			probe := e.outpostCmd(ctx, "probe", "--iface", "br0", "--ci", ci, "--family", "4", "--json")
			if !strings.Contains(probe, guestAddr) {
				t.Fatalf("%s, %s: probe got no answer from the guest:\n%s", phase, st.name, probe)
			}
		}
		t.Logf("%s: offer/get/probe v1+v2 byte-identical", phase)
	}
	check("first boot")
	// The V1 probes for held segments went through the fast path.
	e.xdp(ctx, "eth0", func(_ string, c map[string]uint64) bool { return c["captured-held"] > 0 }, "V1 probes captured for held segments")

	// Reboot over the API: QEMU restarts the guest in place, the data
	// partition keeps the cache.
	e.power(ctx, "reboot")
	rebootAt := time.Now()
	if _, _, err := g.WaitFor(ctx, qemu.Ready, next); err != nil {
		t.Fatal(err)
	}
	t.Logf("reboot-to-ready %s: %.2fs", sc.board, time.Since(rebootAt).Seconds())
	check("after reboot")

	e.power(ctx, "poweroff")
	waitCtx, cancelWait := context.WithTimeout(ctx, time.Minute)
	defer cancelWait()
	if err := g.Wait(waitCtx); err != nil {
		t.Fatalf("power-off: qemu: %v", err)
	}
	if !strings.Contains(console.String(), "unmounting and powering off") {
		t.Error("no orderly power-off on the console")
	}
}

// breakGlass opens the break-glass shell on the serial console, lists
// /bin with it and leaves it.
func breakGlass(ctx context.Context, t *testing.T, g *qemu.Guest, from int) {
	t.Helper()
	g.Type("\n")
	_, next, err := g.WaitFor(ctx, regexp.MustCompile(`outpost break-glass shell`), from)
	if err != nil {
		t.Fatalf("Enter on the console: %v", err)
	}
	g.Type("ls /bin\n")
	if _, _, err := g.WaitFor(ctx, regexp.MustCompile(`^\s*dmesg\s*$`), next); err != nil {
		t.Fatalf("ls /bin in the break-glass shell: %v", err)
	}
	g.Type("exit\n")
	t.Log("break-glass shell on the serial console: ok")
}

// idleMemory reads the guest's memory figures from its status (the
// appliance idle, just ready) and logs them; the budget for outpost's
// anonymous memory is 64 MiB.
func (e *env) idleMemory(ctx context.Context) {
	e.t.Helper()
	out := e.outpostCmd(ctx, "status", "--json", "--api", "http://"+guestAddr+":9000", "--token", apiToken)
	var st struct {
		Memory struct {
			ProcessAnonBytes     uint64 `json:"process_anon_bytes"`
			GoHeapBytes          uint64 `json:"go_heap_bytes"`
			SystemTotalBytes     uint64 `json:"system_total_bytes"`
			SystemAvailableBytes uint64 `json:"system_available_bytes"`
		} `json:"memory"`
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		e.t.Fatalf("status: %v\n%s", err, out)
	}
	m := st.Memory
	e.t.Logf("idle memory: outpost %.1f MiB anonymous (Go heap %.1f MiB; budget 64 MiB); guest %.0f of %.0f MiB available",
		float64(m.ProcessAnonBytes)/(1<<20), float64(m.GoHeapBytes)/(1<<20), float64(m.SystemAvailableBytes)/(1<<20), float64(m.SystemTotalBytes)/(1<<20))
	if m.ProcessAnonBytes == 0 {
		e.t.Errorf("the status reports no memory figures:\n%s", out)
	}
}

// xdp waits up to 20 s for the guest's status (outpost status --json) to
// show the XDP fast path on iface in a state ok accepts, and logs it.
func (e *env) xdp(ctx context.Context, iface string, ok func(mode string, counters map[string]uint64) bool, what string) {
	e.t.Helper()
	var last string
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		out := e.outpostCmd(ctx, "status", "--json", "--api", "http://"+guestAddr+":9000", "--token", apiToken)
		var st struct {
			Interfaces []struct {
				Name        string            `json:"name"`
				XDP         string            `json:"xdp"`
				XDPError    string            `json:"xdp_error"`
				XDPCounters map[string]uint64 `json:"xdp_counters"`
			} `json:"interfaces"`
		}
		if err := json.Unmarshal([]byte(out), &st); err != nil {
			e.t.Fatalf("status: %v\n%s", err, out)
		}
		for _, i := range st.Interfaces {
			if i.Name == iface {
				last = fmt.Sprintf("mode %q, error %q, counters %v", i.XDP, i.XDPError, i.XDPCounters)
				if ok(i.XDP, i.XDPCounters) {
					e.t.Logf("XDP on %s: %s: %s", iface, what, last)
					return
				}
			}
		}
	}
	e.t.Fatalf("XDP on %s not %s after 20 s: %s", iface, what, last)
}

// syncBuffer collects the console while the test reads it.
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

// netns makes a namespace with a bridge (the host side, hostAddr) and the
// guest's tap; it is deleted when the test ends.
func (e *env) netns(ctx context.Context) string {
	ns := fmt.Sprintf("outpost-boot-%d", os.Getpid())
	steps := [][]string{
		{"netns", "add", ns},
		{"-n", ns, "link", "set", "lo", "up"},
		{"-n", ns, "link", "add", "br0", "type", "bridge", "mcast_snooping", "0"},
		{"-n", ns, "addr", "add", hostAddr + "/24", "dev", "br0"},
		{"-n", ns, "link", "set", "br0", "up"},
		{"-n", ns, "route", "add", "224.0.0.0/4", "dev", "br0"},
		{"-n", ns, "tuntap", "add", "dev", "tap0", "mode", "tap"},
		{"-n", ns, "link", "set", "tap0", "master", "br0", "up"},
	}
	for i, s := range steps {
		if out, err := exec.CommandContext(ctx, "ip", s...).CombinedOutput(); err != nil {
			e.t.Fatalf("ip %s: %v\n%s", strings.Join(s, " "), err, out)
		}
		if i == 0 {
			e.t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
		}
	}
	return ns
}

// outpostCmd runs the host's outpost in the namespace and returns stdout.
func (e *env) outpostCmd(ctx context.Context, args ...string) string {
	e.t.Helper()
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", e.ns, e.outpost}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		e.t.Fatalf("outpost %s: %v\n%s%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// power asks the guest's API for a reboot or power-off, from inside the
// namespace (outpost's own client lives in the namespace's network only
// through ip netns exec, so curl-like HTTP goes through a tiny helper).
func (e *env) power(ctx context.Context, action string) {
	e.t.Helper()
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", e.ns, os.Args[0], "-test.run=^TestPowerHelper$")
	cmd.Env = append(os.Environ(), "OUTPOST_BOOTTEST_POWER=http://"+guestAddr+":9000/api/v1/"+action)
	if out, err := cmd.CombinedOutput(); err != nil {
		e.t.Fatalf("%s: %v\n%s", action, err, out)
	}
}

// TestPowerHelper is the HTTP client power runs inside the namespace.
func TestPowerHelper(t *testing.T) {
	url := os.Getenv("OUTPOST_BOOTTEST_POWER")
	if url == "" {
		t.Skip("helper for TestBoot")
	}
	req, err := http.NewRequest(http.MethodPost, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+apiToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("%s: %s: %s", url, resp.Status, body)
	}
}
