package store

import (
	"sync"
)

// Access times decide the eviction order (least recently accessed
// segment first) and max age. Serving must not write, so reads only note
// the access here, in memory; the writer folds the notes into the records
// and the LRU index every AccessFlushInterval (or sooner when many pile
// up), one transaction for all of them. A crash loses at most one
// interval of access times, which only makes eviction slightly less
// exact.

// accessFlushThreshold bounds the pending notes (~100 bytes each).
const accessFlushThreshold = 16384

type accessNote struct {
	last int64 // latest access, unix nanoseconds
	hits uint64
}

type accessLog struct {
	mu      sync.Mutex
	pending map[string]accessNote
	full    chan struct{} // signalled when pending reaches the threshold
}

func (a *accessLog) init() {
	a.pending = make(map[string]accessNote)
	a.full = make(chan struct{}, 1)
}

// touch notes an access (a block served) to a segment.
func (a *accessLog) touch(id []byte, now int64) {
	a.mu.Lock()
	n, ok := a.pending[string(id)]
	n.last = max(n.last, now)
	n.hits++
	a.pending[string(id)] = n
	size := len(a.pending)
	a.mu.Unlock()
	if !ok && size >= accessFlushThreshold {
		select {
		case a.full <- struct{}{}:
		default:
		}
	}
}

// peek returns the pending note of a segment, if any.
func (a *accessLog) peek(id []byte) (accessNote, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	n, ok := a.pending[string(id)]
	return n, ok
}

// take removes and returns every pending note.
func (a *accessLog) take() map[string]accessNote {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.pending) == 0 {
		return nil
	}
	p := a.pending
	a.pending = make(map[string]accessNote)
	return p
}

func (a *accessLog) len() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.pending)
}

// forget drops the pending note of a segment (deleted or flushed).
func (a *accessLog) forget(id []byte) {
	a.mu.Lock()
	delete(a.pending, string(id))
	a.mu.Unlock()
}

// flushAccess writes the pending access notes (writer goroutine only).
func (s *Store) flushAccess() {
	if s.access.len() == 0 {
		return
	}
	if s.checkReserve(0) != nil {
		return // keep the notes until there is room: LRU order can wait
	}
	pending := s.access.take()
	w := s.newBatchWriter("")
	defer func() {
		if err := w.close(); err != nil {
			s.log.Warn("store: writing access times", "segments", len(pending), "err", err)
		}
	}()
	for key, note := range pending {
		id := []byte(key)
		rec, err := getRecord(w.txn, id)
		if err != nil {
			continue // deleted meanwhile
		}
		if err := w.room(3); err != nil {
			s.log.Warn("store: writing access times", "err", err)
			return
		}
		before := *rec
		if last := max(rec.lastAccess, note.last); last != rec.lastAccess {
			if err := w.delete(accessKey(rec.lastAccess, id)); err != nil {
				return
			}
			if err := w.set(accessKey(last, id), nil); err != nil {
				return
			}
			rec.lastAccess = last
		}
		rec.hits += note.hits
		if err := w.set(recordKey(id), rec.marshal()); err != nil {
			return
		}
		w.record(change{id: id, before: &before, after: rec})
	}
}
