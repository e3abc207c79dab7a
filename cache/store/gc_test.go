package store

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/outpost-appliance/outpost/peerdist/pccrc"
	"github.com/outpost-appliance/outpost/peerdist/pccrr"
)

// After churn (ingest several times the limit, with reads that reorder
// the LRU), the store's files take at most 1.2x the live data on disk:
// evictions and value-log GC keep up.
func TestDiskUseAfterChurn(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 256 MiB")
	}
	ctx := context.Background()
	dir := t.TempDir()
	opt := testOptions(t, dir, nil)
	opt.LimitBytes = 64 << 20
	s := openStore(t, opt)

	const total = 256 << 20
	var (
		mu       sync.Mutex
		ingested [][]byte
		written  int64
	)
	next := func() (int, bool) {
		mu.Lock()
		defer mu.Unlock()
		if written >= total {
			return 0, false
		}
		n := len(ingested)
		ingested = append(ingested, nil)
		return n, true
	}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			buf := make([]byte, MaxBlockBytes)
			for {
				n, ok := next()
				if !ok {
					return
				}
				var id []byte
				var size int64
				if n%3 == 0 {
					c := v1Content(uint64(n), 1+rng.IntN(8*pccrc.BlockSize))
					mustAddInfo(t, s, c, "WinINet")
					for i := range c.blocks() {
						if _, err := s.PutBlock(ctx, c.id, uint32(i), c.msgBlk(t, i, pccrr.CryptoAES128, uint64(i))); err != nil {
							t.Error(err)
							return
						}
					}
					id, size = c.id, int64(c.seg.Size)
				} else {
					r := newReplay(uint64(n), 1+rng.IntN(pccrc.MaxSegmentSizeV2))
					ingestReplay(t, s, r, "BITS-4.0")
					id, size = r.id, int64(r.size)
				}
				mu.Lock()
				ingested[n] = id
				written += size
				// Read a few earlier segments, as clients would.
				var reads [][]byte
				for range 2 {
					if prev := ingested[rng.IntN(len(ingested))]; prev != nil {
						reads = append(reads, prev)
					}
				}
				mu.Unlock()
				for _, prev := range reads {
					if _, err := s.ReadBlock(ctx, prev, 0, buf); err != nil && !errors.Is(err, ErrNotFound) {
						t.Error(err)
					}
				}
			}
		}()
	}
	wg.Wait()
	if err := s.Maintain(ctx); err != nil {
		t.Fatal(err)
	}
	st := s.Stats()
	disk, vlog := dirUsage(dir)
	ratio := float64(disk) / float64(st.Bytes)
	t.Logf("ingested %d MiB in %d segments; live %.1f MiB, on disk %.1f MiB (packs %.1f MiB): %.3fx; "+
		"%d evicted, %d GC rewrites, %d commits for %d blocks",
		written>>20, len(ingested), float64(st.Bytes)/(1<<20), float64(disk)/(1<<20), float64(vlog)/(1<<20), ratio,
		st.Evicted[ReasonLimit], st.GCRuns, st.Commits, st.CommittedPuts)
	if st.Bytes > opt.LimitBytes {
		t.Errorf("live data %d over the limit %d", st.Bytes, opt.LimitBytes)
	}
	if ratio > 1.2 {
		t.Errorf("disk use %.3fx the live data, want at most 1.2x", ratio)
	}
	checkContents(t, s)
}
