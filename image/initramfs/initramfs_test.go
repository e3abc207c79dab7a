package initramfs

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestArchive(t *testing.T) {
	mtime := time.Unix(1700000000, 0)
	build := func(order []string) []byte {
		a := New()
		for _, n := range order {
			a.Bytes(n, []byte("contents of "+n), 0o644)
		}
		a.CharDev("dev/console", 0o600, 5, 1)
		a.Symlink("bin/sh", "rush")
		var buf bytes.Buffer
		if err := a.WriteCPIO(&buf, mtime); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	tests := []struct {
		name  string
		order []string
	}{
		{"sorted", []string{"etc/a", "etc/b", "init"}},
		{"reversed", []string{"init", "etc/b", "etc/a"}},
	}
	var first []byte
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := build(tt.order)
			if first == nil {
				first = got
			} else if !bytes.Equal(first, got) {
				t.Fatal("archive depends on insertion order")
			}
		})
	}
	// Cross-check the format with GNU cpio when it is installed.
	if _, err := exec.LookPath("cpio"); err != nil {
		t.Skip("cpio not installed")
	}
	cmd := exec.Command("cpio", "-itv")
	cmd.Stdin = bytes.NewReader(first)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("cpio -t: %v: %s", err, out)
	}
	for _, want := range []string{"etc/a", "dev/console", "bin/sh -> rush", "init"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("cpio -t lacks %q:\n%s", want, out)
		}
	}
	_ = os.WriteFile(filepath.Join(t.TempDir(), "x.cpio"), first, 0o644)
}
