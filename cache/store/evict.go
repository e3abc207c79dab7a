package store

import (
	"context"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// Eviction is by segment, least recently accessed first, as Windows does:
// a segment's blocks are only useful together. Three things evict:
//
//   - the size limit, checked by the writer after every change, so the
//     store never stays over it while ingest continues;
//   - max age (segments not accessed for MaxAge), checked periodically;
//   - the low-disk floor, checked periodically and whenever a write is
//     refused for lack of space: below it, segments go until the
//     filesystem is back above the floor, whatever the limit says.
//
// Evicting deletes keys; the space on disk comes back when value-log GC
// rewrites or removes the files that held them (gc.go), which eviction
// triggers once enough has gone.

// maxVictims bounds one eviction pass's memory; a pass that needs more
// simply runs again.
const maxVictims = 4096

type victim struct {
	id  []byte
	rec *record
}

// evictOverLimit (writer) brings the store under its limit, with a margin
// of 1/64 so that it does not evict on every commit.
func (s *Store) evictOverLimit() {
	for range 64 {
		s.stats.mu.Lock()
		limit, bytes := s.stats.limit, s.stats.bytes
		s.stats.mu.Unlock()
		if limit <= 0 || bytes <= limit {
			return
		}
		n, _, err := s.evict(ReasonLimit, bytes-(limit-limit/64), 0)
		if err != nil {
			s.log.Error("store: evicting over the limit", "err", err)
			return
		}
		if n == 0 {
			return
		}
	}
}

// evict (writer) removes least recently accessed segments: those last
// accessed before cutoff (unix nanoseconds) if cutoff > 0, else until
// need bytes are freed.
func (s *Store) evict(reason Reason, need int64, cutoff int64) (segments int, freed int64, err error) {
	s.flushAccess() // the LRU index must reflect recent reads
	victims, freed, err := s.pickVictims(need, cutoff)
	if err != nil || len(victims) == 0 {
		return 0, 0, err
	}
	w := s.newBatchWriter(reason)
	for _, v := range victims {
		if err := w.deleteSegment(v.id, v.rec); err != nil {
			w.close()
			return 0, 0, err
		}
	}
	if err := w.close(); err != nil {
		return 0, 0, err
	}
	for _, v := range victims {
		s.access.forget(v.id)
	}
	s.stats.add(func(c *counters) {
		if c.evicted == nil {
			c.evicted = make(map[Reason]int64)
		}
		c.evicted[reason] += int64(len(victims))
		c.evictedBytes += freed
		c.evictedSinceGC += freed
	})
	s.log.Info("store: evicted", "reason", reason, "segments", len(victims), "bytes", freed)
	s.maybeKickGC()
	return len(victims), freed, nil
}

func (s *Store) pickVictims(need int64, cutoff int64) ([]victim, int64, error) {
	txn := s.db.NewTransaction(false)
	defer txn.Discard()
	it := txn.NewIterator(badger.IteratorOptions{PrefetchValues: false, Prefix: []byte{prefixAccess}})
	defer it.Close()
	var victims []victim
	var freed int64
	for it.Rewind(); it.Valid() && len(victims) < maxVictims; it.Next() {
		last, id, ok := parseAccessKey(it.Item().Key())
		if !ok {
			continue
		}
		if cutoff > 0 && last >= cutoff {
			break
		}
		if cutoff <= 0 && freed >= need {
			break
		}
		rec, err := getRecord(txn, id)
		if err != nil || rec.lastAccess != last {
			continue // a stale index entry; the open-time check removes it
		}
		victims = append(victims, victim{id: append([]byte(nil), id...), rec: rec})
		freed += rec.bytes()
	}
	return victims, freed, nil
}

// Maintain runs what the background does periodically, now: write access
// times, expire segments past MaxAge, relieve a low disk, and collect
// value-log garbage. For the management API and tests.
func (s *Store) Maintain(ctx context.Context) error { return s.maintain(ctx, true) }

func (s *Store) maintainLoop() {
	defer s.background.Done()
	tick := time.NewTicker(s.opt.MaintenanceInterval)
	defer tick.Stop()
	gc := time.NewTicker(s.opt.GCInterval)
	defer gc.Stop()
	for {
		var err error
		select {
		case <-s.stop:
			return
		case <-tick.C:
			err = s.maintain(s.ctx, false)
		case <-gc.C:
			err = s.maintain(s.ctx, true)
		case <-s.kick:
			err = s.maintain(s.ctx, true)
		}
		if err != nil && s.ctx.Err() == nil {
			s.log.Warn("store: maintenance", "err", err)
		}
	}
}

func (s *Store) maintain(ctx context.Context, collect bool) error {
	s.maintLock.Lock()
	defer s.maintLock.Unlock()
	if err := s.do(ctx, func() error { s.flushAccess(); return nil }); err != nil {
		return err
	}
	if s.opt.MaxAge > 0 {
		cutoff := s.opt.Now().Add(-s.opt.MaxAge).UnixNano()
		for n := maxVictims; n == maxVictims; {
			if err := s.do(ctx, func() error { var err error; n, _, err = s.evict(ReasonMaxAge, 0, cutoff); return err }); err != nil {
				return err
			}
		}
	}
	s.refreshDisk()
	if err := s.relieveLowDisk(ctx); err != nil {
		return err
	}
	if collect {
		s.collectGarbage(ctx, false)
	}
	return nil
}

// relieveLowDisk evicts while the filesystem is below the free-space
// floor, collecting garbage after each round so the space really returns.
func (s *Store) relieveLowDisk(ctx context.Context) error {
	if s.opt.MinFreePercent <= 0 {
		return nil
	}
	for range 16 {
		space, err := s.opt.Statfs(s.opt.Dir)
		if err != nil {
			return nil
		}
		floor := uint64(float64(space.Total) * s.opt.MinFreePercent / 100)
		if space.Free >= floor {
			return nil
		}
		// Evict the shortfall and half a percent more, so that a disk
		// hovering at the floor is not evicted block by block.
		need := int64(floor-space.Free) + int64(space.Total/200)
		var evicted int
		err = s.do(ctx, func() error {
			var err error
			evicted, _, err = s.evict(ReasonLowDisk, need, 0)
			return err
		})
		if err != nil {
			return err
		}
		s.collectGarbage(ctx, true)
		s.refreshDisk()
		if evicted == 0 {
			s.log.Warn("store: free space below the floor and nothing left to evict",
				"dir", s.opt.Dir, "free", space.Free, "floor", floor)
			return nil
		}
	}
	return nil
}

// maybeKickGC asks the background for a GC pass once enough has been
// evicted or deleted since the last one: 1/16 of the live data, and at
// least four packs' worth.
func (s *Store) maybeKickGC() {
	s.stats.mu.Lock()
	due := s.stats.evictedSinceGC >= max(s.stats.bytes/16, 4*s.tune.packSize)
	s.stats.mu.Unlock()
	if due {
		s.kickMaintenance()
	}
}

func (s *Store) kickMaintenance() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}
