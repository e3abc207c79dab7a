package store

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/outpost-appliance/outpost/peerdist/pccrc"
)

// settle waits until the writer has finished what it was doing (an
// eviction runs right after the commit that crossed the limit).
func settle(t testing.TB, s *Store) {
	t.Helper()
	if err := s.do(context.Background(), func() error { return nil }); err != nil {
		t.Fatal(err)
	}
}

func evictedIDs(evs []Event, reason Reason) [][]byte {
	var out [][]byte
	for _, ev := range evs {
		if ev.Kind == SegmentEvicted && ev.Reason == reason {
			out = append(out, ev.SegmentID)
		}
	}
	return out
}

// Least recently accessed segments go first, and the store never stays
// over its limit.
func TestEvictionOrderAndLimit(t *testing.T) {
	ctx := context.Background()
	clock := newClock()
	opt := testOptions(t, t.TempDir(), clock)
	const size = 60000 // 60 016 bytes stored per segment
	opt.LimitBytes = 10*(size+16) + 1000
	s := openStore(t, opt)
	sub := s.Subscribe()
	defer sub.Close()
	var segs []replaySegment
	for i := range 10 {
		r := newReplay(uint64(2*i+1), size) // odd seeds: no extra padding
		ingestReplay(t, s, r, "")
		segs = append(segs, r)
		clock.Advance(time.Second)
	}
	clock.Advance(time.Minute)
	buf := make([]byte, MaxBlockBytes)
	for _, i := range []int{0, 1, 2} { // read the three oldest: now the newest
		if _, err := s.ReadBlock(ctx, segs[i].id, 0, buf); err != nil {
			t.Fatal(err)
		}
	}
	settle(t, s)
	if st := s.Stats(); st.Segments != 10 || st.Evicted[ReasonLimit] != 0 {
		t.Fatalf("before the limit: %+v", st)
	}
	for i := range 4 {
		clock.Advance(time.Second)
		ingestReplay(t, s, newReplay(uint64(1001+2*i), size), "")
		settle(t, s)
		if st := s.Stats(); st.Bytes > opt.LimitBytes {
			t.Fatalf("store at %d bytes, limit %d", st.Bytes, opt.LimitBytes)
		}
	}
	evicted := evictedIDs(drain(sub), ReasonLimit)
	if len(evicted) < 4 {
		t.Fatalf("%d segments evicted, want at least 4", len(evicted))
	}
	for k, id := range evicted {
		if want := segs[3+k].id; !bytes.Equal(id, want) {
			t.Fatalf("eviction %d was %x, want segment %d (%x): least recently accessed first", k, id[:4], 3+k, want[:4])
		}
	}
	for _, i := range []int{0, 1, 2} {
		if has, _ := s.HasSegment(ctx, segs[i].id); !has {
			t.Fatalf("recently read segment %d was evicted", i)
		}
	}
	st := s.Stats()
	if st.Evicted[ReasonLimit] != int64(len(evicted)) || st.EvictedBytes != int64(len(evicted))*(size+16) {
		t.Fatalf("stats %+v after %d evictions", st, len(evicted))
	}
	checkContents(t, s)
}

// The limit is the smaller of the byte limit and the percentage of the
// filesystem.
func TestLimitPercentOfFilesystem(t *testing.T) {
	for _, tc := range []struct {
		name    string
		bytes   int64
		percent float64
		want    int64
	}{
		{"percent smaller", 10 << 20, 1, 1 << 20},
		{"bytes smaller", 512 << 10, 1, 512 << 10},
		{"percent only", 0, 2, 2 << 20},
		{"bytes only", 3 << 20, 0, 3 << 20},
		{"no limit", 0, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opt := testOptions(t, t.TempDir(), nil)
			opt.LimitBytes, opt.LimitPercent = tc.bytes, tc.percent
			opt.Statfs = func(string) (DiskSpace, error) { return DiskSpace{Total: 100 << 20, Free: 90 << 20}, nil }
			s := openStore(t, opt)
			if got := s.Stats().LimitBytes; got != tc.want {
				t.Fatalf("limit %d, want %d", got, tc.want)
			}
			if tc.want == 0 {
				return
			}
			for i := range int(tc.want/60000) + 10 {
				ingestReplay(t, s, newReplay(uint64(i), 60000), "")
			}
			settle(t, s)
			if st := s.Stats(); st.Bytes > tc.want || st.Evicted[ReasonLimit] == 0 {
				t.Fatalf("%d bytes stored, limit %d, %d evicted", st.Bytes, tc.want, st.Evicted[ReasonLimit])
			}
		})
	}
}

func TestMaxAge(t *testing.T) {
	ctx := context.Background()
	day := 24 * time.Hour
	for _, maxAge := range []time.Duration{DefaultMaxAge, 0} {
		clock := newClock()
		opt := testOptions(t, t.TempDir(), clock)
		opt.MaxAge = maxAge
		s := openStore(t, opt)
		sub := s.Subscribe()
		a, b, c := newReplay(1, 100), newReplay(3, 100), newReplay(5, 100)
		ingestReplay(t, s, a, "") // day 0, read on day 20
		clock.Advance(day / 2)
		ingestReplay(t, s, b, "") // day 0.5, never read
		clock.Advance(day * 27)
		ingestReplay(t, s, c, "") // day 27.5
		clock.Advance(-day * 7)
		if _, err := s.ReadBlock(ctx, a.id, 0, make([]byte, MaxBlockBytes)); err != nil {
			t.Fatal(err)
		}
		clock.Advance(day*8 + day/2) // day 29: b is 28.5 days old
		if err := s.Maintain(ctx); err != nil {
			t.Fatal(err)
		}
		expired := evictedIDs(drain(sub), ReasonMaxAge)
		if maxAge == 0 {
			if len(expired) != 0 {
				t.Fatalf("MaxAge 0 expired %d segments", len(expired))
			}
			sub.Close()
			continue
		}
		if len(expired) != 1 || !bytes.Equal(expired[0], b.id) {
			t.Fatalf("expired %x, want only the unread 28.5-day-old segment", expired)
		}
		for _, id := range [][]byte{a.id, c.id} {
			if has, _ := s.HasSegment(ctx, id); !has {
				t.Fatalf("segment %x expired too early", id[:4])
			}
		}
		sub.Close()
		checkContents(t, s)
	}
}

// fakeDisk simulates a small filesystem holding the store and other files:
// free space is what the store's files and the others leave.
type fakeDisk struct {
	mu    sync.Mutex
	dir   string
	total uint64
	other uint64 // bytes used by everything else
}

func (d *fakeDisk) statfs(string) (DiskSpace, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	used, _ := dirUsage(d.dir)
	free := int64(d.total) - int64(d.other) - used
	return DiskSpace{Total: d.total, Free: uint64(max(free, 0))}, nil
}

func (d *fakeDisk) set(other uint64) {
	d.mu.Lock()
	d.other = other
	d.mu.Unlock()
}

// Below the free-space floor the store evicts, oldest first, until the
// filesystem is back above it, whatever its limit says.
func TestLowDiskFloor(t *testing.T) {
	ctx := context.Background()
	clock := newClock()
	dir := t.TempDir()
	disk := &fakeDisk{dir: dir, total: 100 << 20}
	opt := testOptions(t, dir, clock)
	opt.MinFreePercent = DefaultMinFreePercent
	opt.Statfs = disk.statfs
	s := openStore(t, opt)
	sub := s.Subscribe()
	defer sub.Close()
	var segs []replaySegment
	for i := range 80 {
		r := newReplay(uint64(2*i+1), 120000)
		ingestReplay(t, s, r, "")
		segs = append(segs, r)
		clock.Advance(time.Second)
	}
	floor := disk.total * 5 / 100
	used, _ := dirUsage(dir)
	// Something else fills the disk to 2 MiB below the floor.
	disk.set(disk.total - uint64(used) - floor + 2<<20)
	if space, _ := disk.statfs(dir); space.Free >= floor {
		t.Fatalf("setup: free %d, floor %d", space.Free, floor)
	}
	if err := s.Maintain(ctx); err != nil {
		t.Fatal(err)
	}
	space, _ := disk.statfs(dir)
	evicted := evictedIDs(drain(sub), ReasonLowDisk)
	t.Logf("evicted %d of %d segments; free %d, floor %d", len(evicted), len(segs), space.Free, floor)
	if space.Free < floor {
		t.Fatalf("free %d still below the floor %d", space.Free, floor)
	}
	if len(evicted) == 0 || len(evicted) > len(segs)/2 {
		t.Fatalf("%d segments evicted to recover 2 MiB", len(evicted))
	}
	for k, id := range evicted {
		if !bytes.Equal(id, segs[k].id) {
			t.Fatalf("low-disk eviction %d was not the oldest segment", k)
		}
	}
	checkContents(t, s)
}

// Writes that would eat into Badger's pre-allocation reserve are refused
// with ErrDiskFull; nothing is stored and the store carries on.
func TestDiskFullRefusesWrites(t *testing.T) {
	ctx := context.Background()
	opt := testOptions(t, t.TempDir(), nil)
	var mu sync.Mutex
	free := uint64(1 << 40)
	opt.Statfs = func(string) (DiskSpace, error) {
		mu.Lock()
		defer mu.Unlock()
		return DiskSpace{Total: 1 << 41, Free: free}, nil
	}
	s := openStore(t, opt)
	c := v1Content(1, 2*pccrc.BlockSize)
	mustAddInfo(t, s, c, "")
	mu.Lock()
	free = s.reserve
	mu.Unlock()
	// With lots of headroom the store re-reads free space only every
	// 100 ms: a disk does not fill in less.
	time.Sleep(150 * time.Millisecond)
	_, err := s.PutBlock(ctx, c.id, 0, c.msgBlk(t, 0, 1, 0))
	var be *BlockError
	if !errors.Is(err, ErrDiskFull) || !errors.As(err, &be) || be.Index != 0 {
		t.Fatalf("put on a full disk: %v, want a BlockError wrapping ErrDiskFull", err)
	}
	if st := s.Stats(); st.Blocks != 0 || st.DiskFullPuts != 1 {
		t.Fatalf("after a refused put: %+v", st)
	}
	mu.Lock()
	free = 1 << 40
	mu.Unlock()
	if _, err := s.PutBlock(ctx, c.id, 0, c.msgBlk(t, 0, 1, 0)); err != nil {
		t.Fatalf("put once space is back: %v", err)
	}
	checkContents(t, s)
}
