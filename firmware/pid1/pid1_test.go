package pid1

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/u-root/u-root/pkg/mount/loop"
	"golang.org/x/sys/unix"
)

func TestIsInitFalseInTests(t *testing.T) {
	if IsInit() {
		t.Error("a test process is not init")
	}
}

func TestClockRestore(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, ClockFile)
	saved := time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC)
	if err := SaveClock(path, saved); err != nil {
		t.Fatal(err)
	}
	if got, err := LoadClock(path); err != nil || !got.Equal(saved) {
		t.Fatalf("LoadClock = %v, %v; want %v", got, err, saved)
	}
	epoch := time.Unix(0, 0)
	floor := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name  string
		path  string
		floor time.Time
		now   time.Time
		want  time.Time // zero: the clock is left alone
	}{
		{"a board without RTC boots in 1970", path, floor, epoch, saved},
		{"the saved time is older than the build", path, saved.Add(time.Hour), epoch, saved.Add(time.Hour)},
		{"the clock is already later", path, floor, saved.Add(time.Minute), time.Time{}},
		{"never move the clock back", path, floor, saved.Add(24 * time.Hour), time.Time{}},
		{"no saved time: the build time", filepath.Join(dir, "missing"), floor, epoch, floor},
		{"no saved time, no floor", filepath.Join(dir, "missing"), time.Time{}, epoch, time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var set time.Time
			got, err := RestoreClock(tt.path, tt.floor, tt.now, func(t time.Time) error { set = t; return nil })
			if err != nil || !got.Equal(tt.want) || !set.Equal(tt.want) {
				t.Errorf("RestoreClock = %v, %v (set %v); want %v", got, err, set, tt.want)
			}
		})
	}
	// A torn or foreign file is ignored, not trusted.
	if err := os.WriteFile(path, []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, _ := RestoreClock(path, time.Time{}, epoch, func(time.Time) error { return nil }); !got.IsZero() {
		t.Errorf("restored %v from a corrupt file", got)
	}
	// A setter that fails (not root) is reported.
	if err := SaveClock(path, saved); err != nil {
		t.Fatal(err)
	}
	if _, err := RestoreClock(path, time.Time{}, epoch, func(time.Time) error { return unix.EPERM }); !errors.Is(err, unix.EPERM) {
		t.Errorf("setter error not returned: %v", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("temporary files left behind: %v", entries)
	}
}

func TestModuleLists(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "board.conf"), []byte("# virtio\nvirtio_pci\n\n virtio_net \n; comment\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "extra.conf"), []byte("8021q\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "ignored.txt"), []byte("nope\n"), 0o644)
	if got := readModuleLists(dir); !slices.Equal(got, []string{"virtio_pci", "virtio_net", "8021q"}) {
		t.Errorf("modules %v", got)
	}
}

// The boot and data partitions are found by filesystem label and mounted
// (data read-write, boot read-only), here on loop devices backed by image
// files made with Debian's mkfs tools.
func TestFindAndMountByLabel(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for loop devices and mounts (CI runs as root)")
	}
	filesystems, _ := os.ReadFile("/proc/filesystems")
	tag := fmt.Sprintf("%05d", os.Getpid()%100000)
	tests := []struct {
		name, fstype, label, pkg string
		mkfs                     []string
	}{
		{"ext4 data", "ext4", "OT-DATA-" + tag, "e2fsprogs", []string{"mkfs.ext4", "-q", "-F", "-L", "OT-DATA-" + tag}},
		{"FAT16 boot", "vfat", "OTBOOT" + tag, "dosfstools", []string{"mkfs.vfat", "-n", "OTBOOT" + tag}},
		{"FAT32 boot", "vfat", "OTB32" + tag, "dosfstools", []string{"mkfs.vfat", "-F", "32", "-n", "OTB32" + tag}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := exec.LookPath(tt.mkfs[0]); err != nil {
				t.Skipf("%s not found: apt-get install %s", tt.mkfs[0], tt.pkg)
			}
			img := filepath.Join(t.TempDir(), "disk.img")
			if err := os.WriteFile(img, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(img, 64<<20); err != nil {
				t.Fatal(err)
			}
			if out, err := exec.Command(tt.mkfs[0], append(tt.mkfs[1:], img)...).CombinedOutput(); err != nil {
				t.Fatalf("%v: %v\n%s", tt.mkfs, err, out)
			}
			lp, err := loop.New(img, tt.fstype, "")
			if err != nil {
				t.Skipf("no loop device available: %v", err)
			}
			defer lp.Free()

			fs, err := FindByLabel(tt.label)
			if err != nil {
				t.Fatal(err)
			}
			if fs.Device != lp.Dev || fs.Type != tt.fstype || fs.Label != tt.label {
				t.Fatalf("found %+v, want %s (%s) on %s", fs, tt.label, tt.fstype, lp.Dev)
			}
			if !strings.Contains(string(filesystems), "\t"+tt.fstype+"\n") {
				t.Logf("found %s; this kernel cannot mount %s (not in /proc/filesystems), so mounting it is left to the image's boot test", lp.Dev, tt.fstype)
				return
			}
			dir := t.TempDir()
			if err := MountFilesystem(fs, dir, 0); err != nil {
				t.Fatal(err)
			}
			werr := os.WriteFile(filepath.Join(dir, "outpost.toml"), []byte("hostname = \"x\"\n"), 0o644)
			if err := unix.Unmount(dir, 0); err != nil {
				t.Fatal(err)
			}
			if werr != nil {
				t.Fatalf("write on the read-write mount: %v", werr)
			}
			if err := MountFilesystem(fs, dir, unix.MS_RDONLY); err != nil {
				t.Fatal(err)
			}
			defer unix.Unmount(dir, 0)
			if b, err := os.ReadFile(filepath.Join(dir, "outpost.toml")); err != nil || string(b) != "hostname = \"x\"\n" {
				t.Errorf("read back %q, %v", b, err)
			}
			if err := os.WriteFile(filepath.Join(dir, "x"), nil, 0o644); !errors.Is(err, unix.EROFS) {
				t.Errorf("write on the read-only mount: %v, want EROFS", err)
			}
		})
	}
	start := time.Now()
	if _, err := WaitForLabel(t.Context(), "OT-NONE-"+tag, 300*time.Millisecond); err == nil || time.Since(start) > 3*time.Second {
		t.Errorf("WaitForLabel for a missing label = %v after %v", err, time.Since(start))
	}
}

func TestFATLabel(t *testing.T) {
	for label, want := range map[string]string{BootLabel: "OUTPOSTBOOT", "otb32": "OTB32", "a-much-longer-label": "AMUCHLONGER"} {
		if got := fatLabel(label); got != want {
			t.Errorf("fatLabel(%q) = %q, want %q", label, got, want)
		}
	}
}
