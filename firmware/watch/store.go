package watch

import (
	"context"
	"errors"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/outpost-appliance/outpost/cache/hostedcache"
	"github.com/outpost-appliance/outpost/cache/store"
	"github.com/outpost-appliance/outpost/firmware/events"
)

// tally sums evictions from the change feed until they are reported.
type tally struct {
	mu    sync.Mutex
	count map[store.Reason]int
	since time.Time
}

func newTally() *tally { return &tally{count: map[store.Reason]int{}} }

func (t *tally) add(reason store.Reason) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.count) == 0 {
		t.since = time.Now()
	}
	t.count[reason]++
}

// take returns the sums if they are older than age (or force), emptying
// the tally.
func (t *tally) take(age time.Duration, force bool) map[store.Reason]int {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.count) == 0 || (!force && time.Since(t.since) < age) {
		return nil
	}
	out := t.count
	t.count = map[store.Reason]int{}
	return out
}

// checkStore follows the open store's change feed (subscribing again
// after the hosted cache restarts) and compares its figures.
func (w *watcher) checkStore(ctx context.Context, st *store.Store) {
	if st != w.store {
		w.flushEvictions(true)
		w.unfollow()
		w.store, w.diskLow = st, false
		if st == nil {
			return
		}
		w.storeBase = st.Stats()
		w.evictedBase = w.storeBase.EvictedBytes
		w.follow(ctx, st)
	}
	if st == nil {
		return
	}
	s := st.Stats()
	if n := s.DiskFullPuts - w.storeBase.DiskFullPuts; n > 0 {
		w.opts.Events.Log(events.DiskFull, events.Fields{"blocks": n})
	}
	if n := s.CorruptBlocks - w.storeBase.CorruptBlocks; n > 0 {
		w.opts.Events.Log(events.CorruptBlocks, events.Fields{"blocks": n})
	}
	w.storeBase = s
	if floor := w.opts.LowDiskFloor; floor > 0 && s.FilesystemSize > 0 {
		low := float64(s.FilesystemFree) < float64(s.FilesystemSize)*floor/100
		if low && !w.diskLow {
			w.opts.Events.Log(events.DiskLow, events.Fields{
				"free_bytes": s.FilesystemFree, "filesystem_bytes": s.FilesystemSize, "floor_percent": floor,
			})
		}
		w.diskLow = low
	}
	w.flushEvictions(false)
}

// follow reads the store's change feed in the background, counting
// evictions.
func (w *watcher) follow(ctx context.Context, st *store.Store) {
	sub := st.Subscribe()
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	w.stopFollow, w.followDone = cancel, done
	go func() {
		defer close(done)
		defer sub.Close()
		for {
			ev, err := sub.Next(ctx)
			if err != nil {
				if !errors.Is(err, store.ErrClosed) && ctx.Err() == nil {
					w.opts.Logger.Warn("watch: the store's change feed", "err", err)
				}
				return
			}
			if ev.Kind == store.SegmentEvicted {
				w.evictions.add(ev.Reason)
			}
			// Resync: evictions in the gap are lost to the events; the
			// store's counters (and metrics) still have them.
		}
	}()
}

func (w *watcher) unfollow() {
	if w.stopFollow != nil {
		w.stopFollow()
		<-w.followDone
		w.stopFollow, w.followDone = nil, nil
	}
}

// flushEvictions logs the summed evictions once they are
// EvictionSummary old (or now, when force), one event per reason.
func (w *watcher) flushEvictions(force bool) {
	counts := w.evictions.take(w.opts.EvictionSummary, force)
	if counts == nil {
		return
	}
	var bytes int64
	if w.store != nil {
		evicted := w.store.Stats().EvictedBytes
		bytes, w.evictedBase = evicted-w.evictedBase, evicted
	}
	for _, reason := range slices.Sorted(maps.Keys(counts)) {
		fields := events.Fields{"reason": string(reason), "segments": counts[reason]}
		if len(counts) == 1 && bytes > 0 {
			fields["bytes"] = bytes
		}
		w.opts.Events.Log(events.SegmentsEvicted, fields)
	}
}

// checkPullFailures logs the growth of each tag's pull-failure counter.
func (w *watcher) checkPullFailures(tags map[string]hostedcache.TagCounters) {
	first := w.pullFailures == nil
	if first {
		w.pullFailures = map[string]uint64{}
	}
	for _, tag := range slices.Sorted(maps.Keys(tags)) {
		n := tags[tag].PullFailures
		if d := n - w.pullFailures[tag]; d > 0 && !first {
			w.opts.Events.Log(events.PullFailed, events.Fields{"tag": tag, "count": d})
		}
		w.pullFailures[tag] = n
	}
}
