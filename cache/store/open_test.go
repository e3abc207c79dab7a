package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/outpost-appliance/outpost/peerdist/pccrc"
	"github.com/outpost-appliance/outpost/peerdist/pccrr"
)

// dirSnapshot fingerprints every file of a directory.
func dirSnapshot(t *testing.T, dir string) string {
	t.Helper()
	var lines []string
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		info, _ := d.Info()
		lines = append(lines, fmt.Sprintf("%s %d %x %v", path, len(data), sha256.Sum256(data), info.ModTime()))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// A directory the firmware does not understand is refused with a clear
// error and left exactly as it was.
func TestFormatRefusal(t *testing.T) {
	ctx := context.Background()
	populated := func(t *testing.T) string {
		dir := t.TempDir()
		s := openStore(t, testOptions(t, dir, nil))
		ingestReplay(t, s, newReplay(1, 1000), "")
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	cases := []struct {
		name    string
		prepare func(t *testing.T) string
		want    error
		text    string
	}{
		{"newer format", func(t *testing.T) string {
			dir := populated(t)
			os.WriteFile(filepath.Join(dir, formatFile), []byte("outpost-segment-store 2\n"), 0o640)
			return dir
		}, ErrNewerFormat, "newer firmware (format 2; this firmware reads up to 1)"},
		{"garbled FORMAT", func(t *testing.T) string {
			dir := populated(t)
			os.WriteFile(filepath.Join(dir, formatFile), []byte("something else\n"), 0o640)
			return dir
		}, ErrUnknownFormat, "not a segment store"},
		{"foreign files, no FORMAT", func(t *testing.T) string {
			dir := t.TempDir()
			os.WriteFile(filepath.Join(dir, "photos.db"), []byte("mine"), 0o640)
			return dir
		}, ErrUnknownFormat, "photos.db"},
		{"badger without FORMAT", func(t *testing.T) string {
			dir := populated(t)
			os.Remove(filepath.Join(dir, formatFile))
			return dir
		}, ErrUnknownFormat, "has no FORMAT file"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := tc.prepare(t)
			before := dirSnapshot(t, dir)
			time.Sleep(10 * time.Millisecond) // a rewrite would change mtimes
			s, err := Open(ctx, testOptions(t, dir, nil))
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.text) {
				t.Fatalf("Open: %v; want %v mentioning %q", err, tc.want, tc.text)
			}
			t.Logf("refused: %v", err)
			if after := dirSnapshot(t, dir); after != before {
				t.Fatalf("the refused directory changed:\nbefore:\n%s\nafter:\n%s", before, after)
			}
		})
	}
	t.Run("interrupted creation", func(t *testing.T) {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, formatFile+".tmp"), []byte("outpost-seg"), 0o640)
		s := openStore(t, testOptions(t, dir, nil))
		ingestReplay(t, s, newReplay(1, 100), "")
	})
}

// The accounting after reopening equals the contents, and a store whose
// keys disagree (as only a bug or damage could make them) is repaired.
func TestReopenRecountsAndRepairs(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	opt := testOptions(t, dir, nil)
	s := openStore(t, opt)
	c := v1Content(1, 5*pccrc.BlockSize+100)
	ingestV1(t, s, c)
	var replays []replaySegment
	for i := range 5 {
		r := newReplay(uint64(10+i), 50000+16*i)
		ingestReplay(t, s, r, "WebIO")
		replays = append(replays, r)
	}
	partial := v1Content(2, 4*pccrc.BlockSize)
	mustAddInfo(t, s, partial, "")
	if _, err := s.PutBlock(ctx, partial.id, 2, partial.msgBlk(t, 2, pccrr.CryptoAES128, 0)); err != nil {
		t.Fatal(err)
	}
	mustSync(t, s)
	before := s.Stats()
	segs, blocks, n := checkContents(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openStore(t, opt)
	after := s.Stats()
	if after.Bytes != before.Bytes || after.Blocks != before.Blocks || after.Segments != before.Segments ||
		after.VerifiedBlocks != before.VerifiedBlocks || after.TagBytes["WebIO"] != before.TagBytes["WebIO"] {
		t.Fatalf("stats before close %+v, after reopen %+v", before, after)
	}
	if s2, b2, n2 := checkContents(t, s); s2 != segs || b2 != blocks || n2 != n {
		t.Fatalf("contents changed across reopen")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// Damage the keys behind the store's back.
	bopt, _, _ := badgerOptions(dir, ProfileSmall)
	smallFiles(&bopt)
	db, err := badger.Open(bopt.WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	orphan := newReplay(99, 100)
	err = db.Update(func(txn *badger.Txn) error {
		// a block whose record does not know it is gone
		if err := txn.Delete(blockKey(c.id, 3)); err != nil {
			return err
		}
		// a block with no record
		orphanEntry := packEntry{crypto: 1, pack: 1, length: 128}
		if err := txn.Set(blockKey(orphan.id, 0), orphanEntry.marshal()); err != nil {
			return err
		}
		// an LRU entry pointing nowhere, and a record without its LRU entry
		if err := txn.Set(accessKey(12345, orphan.id), nil); err != nil {
			return err
		}
		rec, err := getRecord(txn, replays[0].id)
		if err != nil {
			return err
		}
		return txn.Delete(accessKey(rec.lastAccess, replays[0].id))
	})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()

	s = openStore(t, opt)
	info, err := s.Segment(ctx, c.id)
	if err != nil || info.Held.Has(3) || info.Held.Len() != c.blocks()-1 {
		t.Fatalf("segment with a lost block: %+v, %v", info, err)
	}
	if has, _ := s.HasSegment(ctx, orphan.id); has {
		t.Fatal("orphan block adopted")
	}
	if _, err := s.ReadBlock(ctx, orphan.id, 0, make([]byte, MaxBlockBytes)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("orphan block still readable: %v", err)
	}
	segs2, blocks2, _ := checkContents(t, s)
	if segs2 != segs || blocks2 != blocks-1 {
		t.Fatalf("after repair: %d segments %d blocks, want %d and %d", segs2, blocks2, segs, blocks-1)
	}
	// The repaired LRU index works: everything can be evicted in order.
	if err := s.do(ctx, func() error { _, _, err := s.evict(ReasonLimit, 1<<40, 0); return err }); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Segments != 0 || st.Bytes != 0 {
		t.Fatalf("after evicting everything: %+v", st)
	}
}

// Stored bytes that rot on disk are detected by their checksum, never
// served, and dropped.
func TestCorruptBlockIsDetected(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	opt := testOptions(t, dir, nil)
	s := openStore(t, opt)
	c := v1Content(1, 2*pccrc.BlockSize)
	ingestV1(t, s, c)
	r := newReplay(3, 4000)
	ingestReplay(t, s, r, "")
	served, err := s.ReadBlock(ctx, c.id, 1, make([]byte, MaxBlockBytes))
	if err != nil {
		t.Fatal(err)
	}
	v1Cipher := append([]byte(nil), served.Ciphertext...)
	s.Close()
	for _, needle := range [][]byte{r.block.Ciphertext[:64], v1Cipher[:64]} {
		flipInPacks(t, dir, needle)
	}

	s = openStore(t, opt)
	sub := s.Subscribe()
	defer sub.Close()
	for _, tc := range []struct {
		id    []byte
		index uint32
	}{{r.id, 0}, {c.id, 1}} {
		_, err := s.ReadBlock(ctx, tc.id, tc.index, make([]byte, MaxBlockBytes))
		if !errors.Is(err, ErrCorrupt) || !errors.Is(err, ErrNotFound) {
			t.Fatalf("read of a corrupt block: %v, want ErrCorrupt (and ErrNotFound)", err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for s.Stats().CorruptBlocks < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if st := s.Stats(); st.CorruptBlocks != 2 {
		t.Fatalf("%d corrupt blocks dropped, want 2", st.CorruptBlocks)
	}
	info, _ := s.Segment(ctx, c.id)
	if info.Held.Has(1) || !info.Held.Has(0) {
		t.Fatalf("held after dropping block 1: %v", info.Held.Ranges())
	}
	evs := drain(sub)
	if len(evs) != 1 || evs[0].Kind != SegmentDeleted || evs[0].Reason != ReasonCorrupt || !bytes.Equal(evs[0].SegmentID, r.id) {
		t.Fatalf("events %+v, want the replayed segment deleted as corrupt", evs)
	}
	// Offered again, the block goes back in.
	if _, err := s.PutBlock(ctx, c.id, 1, c.msgBlk(t, 1, pccrr.CryptoAES128, 0)); err != nil {
		t.Fatal(err)
	}
	checkContents(t, s)
}

// flipInPacks flips one bit inside the first occurrence of needle in the
// store's pack files.
func flipInPacks(t *testing.T, dir string, needle []byte) {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "packs", "*.pack"))
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if i := bytes.Index(data, needle); i >= 0 {
			fh, err := os.OpenFile(f, os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer fh.Close()
			if _, err := fh.WriteAt([]byte{data[i+20] ^ 0x10}, int64(i+20)); err != nil {
				t.Fatal(err)
			}
			return
		}
	}
	t.Fatalf("block bytes not found in the packs")
}
