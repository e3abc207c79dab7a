package store

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"
)

// The entry cache never outlives a change: after a block is served (and
// its entry cached), deleting, replacing, evicting or flushing its
// segment, or compacting its pack away, makes the next views — through
// ViewBlock and OpenBlock, twice each — answer what the index says.
func TestEntryCacheFollowsChanges(t *testing.T) {
	for _, tc := range []struct {
		name string
		op   func(ctx context.Context, t *testing.T, s *Store, clock *testClock, r, other replaySegment) (want []byte)
	}{
		{"unchanged", func(context.Context, *testing.T, *Store, *testClock, replaySegment, replaySegment) []byte {
			return nil
		}},
		{"deleted", func(ctx context.Context, t *testing.T, s *Store, _ *testClock, r, _ replaySegment) []byte {
			if err := s.DeleteSegment(ctx, r.id); err != nil {
				t.Fatal(err)
			}
			return nil
		}},
		{"replaced by other bytes", func(ctx context.Context, t *testing.T, s *Store, _ *testClock, r, _ replaySegment) []byte {
			if err := s.DeleteSegment(ctx, r.id); err != nil {
				t.Fatal(err)
			}
			r.block.Ciphertext = bytes.Repeat([]byte{0x5A}, len(r.block.Ciphertext))
			ingestReplay(t, s, r, "")
			return r.block.Ciphertext
		}},
		{"evicted", func(ctx context.Context, t *testing.T, s *Store, clock *testClock, _, _ replaySegment) []byte {
			clock.Advance(48 * time.Hour)
			if err := s.Maintain(ctx); err != nil {
				t.Fatal(err)
			}
			return nil
		}},
		{"flushed", func(ctx context.Context, t *testing.T, s *Store, _ *testClock, _, _ replaySegment) []byte {
			if err := s.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			return nil
		}},
		{"compacted", func(ctx context.Context, t *testing.T, s *Store, _ *testClock, r, other replaySegment) []byte {
			before := packOf(t, s, r.id, 0)
			if err := s.DeleteSegment(ctx, other.id); err != nil {
				t.Fatal(err)
			}
			s.collectGarbage(ctx, true)
			if packOf(t, s, r.id, 0) == before {
				t.Fatal("the block was not moved")
			}
			// The old copy is served until its pack goes; then the index.
			if got := view(s, r.id, 0, make([]byte, MaxBlockBytes)); got.err != nil || !bytes.Equal(got.ct, r.block.Ciphertext) {
				t.Fatalf("view of the old copy: %v", got.err)
			}
			s.do(ctx, func() error { s.dropEmptyPacks(); return nil })
			if s.packs.get(before) != nil {
				t.Fatal("the block's old pack was not removed")
			}
			return r.block.Ciphertext
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			clock := newClock()
			opt := testOptions(t, t.TempDir(), clock)
			opt.MaxAge = 24 * time.Hour
			s := openStore(t, opt)
			r := laneReplay(51, 60000, 3)
			other := laneReplay(53, 60000, 3) // same lane, same pack
			ingestReplay(t, s, r, "")
			ingestReplay(t, s, other, "")
			buf := make([]byte, MaxBlockBytes)
			for range 2 { // the second view comes from the cache
				if got := view(s, r.id, 0, buf); got.err != nil || !bytes.Equal(got.ct, r.block.Ciphertext) {
					t.Fatalf("view before: %v", got.err)
				}
			}
			want := tc.op(ctx, t, s, clock, r, other)
			if tc.name == "unchanged" {
				want = r.block.Ciphertext
			}
			mustSync(t, s)
			for i := range 2 {
				got := view(s, r.id, 0, buf)
				opened, err := s.OpenBlock(ctx, r.id, 0, buf)
				switch {
				case want == nil:
					if !errors.Is(got.err, ErrNotFound) || got.sent != 0 || !errors.Is(err, ErrNotFound) {
						t.Fatalf("view %d after: %v (sent %d), open: %v; want ErrNotFound", i, got.err, got.sent, err)
					}
				case got.err != nil || !bytes.Equal(got.ct, want):
					t.Fatalf("view %d after: %v, or not the block's bytes", i, got.err)
				case err != nil || !bytes.Equal(opened.Ciphertext, want):
					t.Fatalf("open %d after: %v, or not the block's bytes", i, err)
				}
			}
			if s.Stats().CorruptBlocks != 0 {
				t.Error("a change was taken for corruption")
			}
		})
	}
}
