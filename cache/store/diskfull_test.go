package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/dgraph-io/badger/v4"
)

const envFullDir = "OUTPOST_STORE_FULL_DIR"

// A real full filesystem: a 96 MiB tmpfs. Badger writes through mmapped,
// sparse files, where a full disk is a SIGBUS rather than an error, so the
// store must refuse writes before that point. The filling runs in a child
// process so that a crash fails the test instead of killing it.
func TestDiskFullTmpfs(t *testing.T) {
	if testing.Short() {
		t.Skip("mounts a tmpfs")
	}
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=96m"); err != nil {
		t.Skipf("cannot mount a tmpfs (needs root): %v", err)
	}
	defer func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			syscall.Unmount(dir, syscall.MNT_DETACH)
		}
	}()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^TestDiskFullChild$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), envFullDir+"="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "disk-full child: ok") {
		t.Fatalf("child: %v\n%s", err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, "disk-full child:") {
			t.Log(strings.TrimSpace(line))
		}
	}
}

func TestDiskFullChild(t *testing.T) {
	mount := os.Getenv(envFullDir)
	if mount == "" {
		t.Skip("run by TestDiskFullTmpfs")
	}
	ctx := context.Background()
	opt := testOptions(t, filepath.Join(mount, "store"), nil)
	opt.Tune = func(o *badger.Options) {
		o.ValueLogFileSize = 1 << 20
		o.MemTableSize = 1 << 20
	}
	s, err := Open(ctx, opt)
	if err != nil {
		t.Fatal(err)
	}
	var held []replaySegment
	var full error
	for i := 0; full == nil; i++ {
		r := newReplay(uint64(i), 128<<10)
		if err := s.AddOffer(ctx, SegmentOffer{SegmentID: r.id, Version: 2, Size: uint32(r.size)}); err != nil {
			full = err
			break
		}
		if _, err := s.PutBlock(ctx, r.id, 0, r.block); err != nil {
			full = err
			break
		}
		held = append(held, r)
	}
	if !errors.Is(full, ErrDiskFull) {
		t.Fatalf("filling the disk ended with %v, want ErrDiskFull", full)
	}
	space, _ := statfs(mount)
	fmt.Printf("disk-full child: %d segments stored, then %v (free %d of %d)\n", len(held), full, space.Free, space.Total)
	// Keep knocking: every attempt is refused, nothing breaks.
	for i := range 20 {
		r := newReplay(uint64(1000000+i), 128<<10)
		if err := s.AddOffer(ctx, SegmentOffer{SegmentID: r.id, Version: 2, Size: uint32(r.size)}); err == nil {
			if _, err := s.PutBlock(ctx, r.id, 0, r.block); !errors.Is(err, ErrDiskFull) {
				t.Fatalf("put on a full disk: %v", err)
			}
		}
	}
	checkContents(t, s)

	// Something else fills the disk to the last page: everything that
	// would write is refused, reads go on.
	filler := filepath.Join(mount, "filler")
	fillDisk(t, filler)
	r0 := newReplay(3000000, 128<<10)
	if err := s.AddOffer(ctx, SegmentOffer{SegmentID: r0.id, Version: 2, Size: uint32(r0.size)}); !errors.Is(err, ErrDiskFull) {
		t.Fatalf("offer on a 100%% full disk: %v", err)
	}
	if _, err := s.PutBlock(ctx, held[0].id, 0, held[0].block); err != nil {
		t.Fatalf("put of a held block (no write needed): %v", err)
	}
	for _, r := range held[:5] {
		if _, err := s.ReadBlock(ctx, r.id, 0, make([]byte, MaxBlockBytes)); err != nil {
			t.Fatalf("read on a full disk: %v", err)
		}
	}
	if err := s.Maintain(ctx); err != nil { // access times must wait, not crash
		t.Fatal(err)
	}
	os.Remove(filler)
	fmt.Println("disk-full child: a 100% full disk refused writes and served reads")

	// Free space: delete half, collect garbage, and writes work again.
	for _, r := range held[:len(held)/2] {
		if err := s.DeleteSegment(ctx, r.id); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Maintain(ctx); err != nil {
		t.Fatal(err)
	}
	r := newReplay(2000000, 128<<10)
	if err := s.AddOffer(ctx, SegmentOffer{SegmentID: r.id, Version: 2, Size: uint32(r.size)}); err != nil {
		t.Fatalf("offer after freeing space: %v", err)
	}
	if _, err := s.PutBlock(ctx, r.id, 0, r.block); err != nil {
		t.Fatalf("put after freeing space: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(ctx, opt)
	if err != nil {
		t.Fatalf("reopening: %v", err)
	}
	_, blocks, _ := checkContents(t, s)
	if int(blocks) != len(held)-len(held)/2+1 {
		t.Fatalf("%d blocks after reopening, want %d", blocks, len(held)-len(held)/2+1)
	}
	s.Close()
	fmt.Println("disk-full child: ok")
}

// fillDisk writes a file until the filesystem is full.
func fillDisk(t *testing.T, path string) {
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 1<<20)
	for len(chunk) >= 4096 {
		if _, err := f.Write(chunk); err != nil {
			chunk = chunk[:len(chunk)/2]
		}
	}
}
