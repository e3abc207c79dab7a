package store

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/outpost-appliance/outpost/peerdist/pccrc"
	"github.com/outpost-appliance/outpost/peerdist/pchc"
)

// OpenBlock answers what Segment and ReadBlock answer together, for every
// block, whether its segment's record is in the writer's cache or not.
func TestOpenBlockMatchesSegmentAndReadBlock(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, testOptions(t, t.TempDir(), nil))
	c := v1Content(7, 3*pccrc.BlockSize+100)
	ingestV1(t, s, c)
	r := newReplay(8, 4000)
	ingestReplay(t, s, r, "BITS-4.0")
	for _, cached := range []bool{true, false} {
		if !cached {
			s.shapes.clear()
		}
		for _, tc := range []struct {
			id     []byte
			blocks int
			tag    string
		}{{c.id, c.blocks(), "WinINet"}, {r.id, 1, pchc.TagBITS}} {
			info, err := s.Segment(ctx, tc.id)
			if err != nil {
				t.Fatal(err)
			}
			for i := range tc.blocks {
				want, err := s.ReadBlock(ctx, tc.id, uint32(i), make([]byte, MaxBlockBytes))
				if err != nil {
					t.Fatal(err)
				}
				buf := make([]byte, MaxBlockBytes)
				got, err := s.OpenBlock(ctx, tc.id, uint32(i), buf)
				if err != nil {
					t.Fatalf("OpenBlock %d: %v", i, err)
				}
				if got.Crypto != want.Crypto || !bytes.Equal(got.IV, want.IV) || !bytes.Equal(got.Ciphertext, want.Ciphertext) {
					t.Fatalf("cached %v, block %d: OpenBlock and ReadBlock differ", cached, i)
				}
				if &got.IV[0] != &buf[0] || &got.Ciphertext[0] != &buf[16] {
					t.Fatal("the IV and the ciphertext are not back to back at the start of buf")
				}
				if got.Held != info.Held || got.Tag != tc.tag {
					t.Fatalf("cached %v: held %v tag %q, want %v %q", cached, got.Held.Ranges(), got.Tag, info.Held.Ranges(), tc.tag)
				}
			}
		}
	}
}

// A miss in a known segment still reports the segment (its tag counts the
// miss); an unknown segment reports nothing.
func TestOpenBlockMisses(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, testOptions(t, t.TempDir(), nil))
	c := v1Content(9, 2*pccrc.BlockSize)
	mustAddInfo(t, s, c, "WebIO")
	if _, err := s.PutBlock(ctx, c.id, 0, c.msgBlk(t, 0, 0, 0)); err != nil {
		t.Fatal(err)
	}
	got, err := s.OpenBlock(ctx, c.id, 1, make([]byte, MaxBlockBytes))
	if !errors.Is(err, ErrNotFound) || got.Tag != pchc.TagWebIO || !got.Held.Has(0) || got.Held.Has(1) {
		t.Fatalf("missing block of a known segment: %+v, %v", got, err)
	}
	got, err = s.OpenBlock(ctx, bytes.Repeat([]byte{1}, 32), 0, make([]byte, MaxBlockBytes))
	if !errors.Is(err, ErrNotFound) || got.Tag != "" || got.Held.Len() != 0 {
		t.Fatalf("unknown segment: %+v, %v", got, err)
	}
	if _, err := s.OpenBlock(ctx, c.id, 0, make([]byte, 100)); !errors.Is(err, ErrShortBuffer) {
		t.Fatalf("short buffer: %v", err)
	}
}

// Stored bytes that rot are caught by OpenBlock's CRC32C check too.
func TestOpenBlockDetectsCorruption(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	opt := testOptions(t, dir, nil)
	s := openStore(t, opt)
	r := newReplay(11, 5000)
	ingestReplay(t, s, r, "")
	s.Close()
	flipInPacks(t, dir, r.block.Ciphertext[:64])
	s = openStore(t, opt)
	if _, err := s.OpenBlock(ctx, r.id, 0, make([]byte, MaxBlockBytes)); !errors.Is(err, ErrCorrupt) || !errors.Is(err, ErrNotFound) {
		t.Fatalf("OpenBlock of a corrupt block: %v, want ErrCorrupt (and ErrNotFound)", err)
	}
}

func TestOpenBlockAllocations(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, testOptions(t, t.TempDir(), nil))
	c := v1Content(5, pccrc.BlockSize)
	ingestV1(t, s, c)
	buf := make([]byte, MaxBlockBytes)
	s.OpenBlock(ctx, c.id, 0, buf) // fills the record cache
	before := heapAlloc()
	for range 100 {
		if _, err := s.OpenBlock(ctx, c.id, 0, buf); err != nil {
			t.Fatal(err)
		}
	}
	if perRead := (heapAlloc() - before) / 100; perRead > 8<<10 {
		t.Fatalf("OpenBlock allocates %d bytes per 64 KiB block", perRead)
	}
}
