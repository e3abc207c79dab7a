package build

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestReproducible builds qemu-amd64 twice into two directories and
// expects byte-identical kernel, initramfs and disk image.
func TestReproducible(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root (apt-get download of the kernel)")
	}
	for _, tool := range []string{"apt-get", "dpkg-deb", "depmod", "modprobe", "mkfs.vfat", "mcopy", "mkfs.ext4"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (.ci/run installs it)", tool)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	repo, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	var results []*Result
	for _, out := range []string{t.TempDir(), t.TempDir()} {
		start := time.Now()
		r, err := Board(ctx, Options{Repo: repo, Out: out, Cache: filepath.Join(repo, "build", "cache"), Version: "repro",
			Time: time.Unix(1700000000, 0), Log: slog.New(slog.NewTextHandler(io.Discard, nil))}, "qemu-amd64")
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("built in %.1fs", time.Since(start).Seconds())
		results = append(results, r)
	}
	for _, f := range []struct {
		name string
		path func(*Result) string
	}{
		{"vmlinuz", func(r *Result) string { return r.Kernel }},
		{"initramfs", func(r *Result) string { return r.Initramfs }},
		{"disk", func(r *Result) string { return r.Disk }},
	} {
		a, err := os.ReadFile(f.path(results[0]))
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(f.path(results[1]))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Errorf("%s differs between two builds", f.name)
		}
	}
}
