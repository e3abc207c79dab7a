// Package holders remembers which remote peers hold which segments, as
// learned from other leaders' forwarded matches: discovery answers for
// them (pointing clients at the relay), and the relay fetches from them,
// best holder first.
package holders

import (
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/outpost-appliance/outpost/peerdist/pccrc"
)

// Limits of the table.
const (
	DefaultMaxSegments = 65536
	DefaultTTL         = time.Hour
	MaxHoldersPerSeg   = 8
)

// Holder is a remote MS-PCCRR endpoint holding a segment.
type Holder struct {
	Addr netip.AddrPort
	// Leader is the name of the peer leader that reported it.
	Leader string
}

// Segment is what is known of a remotely held segment.
type Segment struct {
	ID []byte
	// Version and Size are 0 when the reporting leader did not know
	// them (the holder is a client in its subnet, whose ProbeMatch says
	// neither).
	Version pccrc.Version
	Size    uint32
	// Blocks is the largest number of blocks a holder reported (V1
	// BlockCount); 0 when unknown.
	Blocks   int
	Complete bool
	// Holders are in order of preference: the last to serve us first,
	// those that failed last.
	Holders []Holder
	Learned time.Time
}

type holder struct {
	Holder
	failures int
	lastOK   time.Time
}

type entry struct {
	version  pccrc.Version
	size     uint32
	blocks   int
	complete bool
	holders  []holder
	learned  time.Time
}

// Table is safe for concurrent use.
type Table struct {
	max int
	ttl time.Duration
	now func() time.Time

	mu    sync.Mutex
	m     map[string]*entry
	watch func(id []byte)
}

// New returns a table of at most maxSegments entries, each forgotten ttl
// after it was last reported.
func New(maxSegments int, ttl time.Duration) *Table {
	if maxSegments <= 0 {
		maxSegments = DefaultMaxSegments
	}
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	return &Table{max: maxSegments, ttl: ttl, now: time.Now, m: map[string]*entry{}}
}

// Add records a report. Holders already known keep their history; new
// ones go after them; the list is capped at MaxHoldersPerSeg.
func (t *Table) Add(seg Segment) {
	if len(seg.ID) == 0 || len(seg.Holders) == 0 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	key := string(seg.ID)
	e, ok := t.m[key]
	if !ok {
		if len(t.m) >= t.max {
			t.evict(now)
		}
		e = &entry{}
		t.m[key] = e
	}
	e.learned = now
	if t.watch != nil {
		t.watch(seg.ID)
	}
	if seg.Version != 0 {
		e.version = seg.Version
	}
	if seg.Size != 0 {
		e.size = seg.Size
	}
	e.blocks = max(e.blocks, seg.Blocks)
	e.complete = e.complete || seg.Complete
	for _, h := range seg.Holders {
		if !h.Addr.IsValid() || slices.ContainsFunc(e.holders, func(x holder) bool { return x.Addr == h.Addr }) {
			continue
		}
		if len(e.holders) < MaxHoldersPerSeg {
			e.holders = append(e.holders, holder{Holder: h})
		}
	}
}

// evict drops expired entries, or the oldest if none is.
func (t *Table) evict(now time.Time) {
	var oldestKey string
	var oldest time.Time
	for k, e := range t.m {
		if now.Sub(e.learned) >= t.ttl {
			delete(t.m, k)
			continue
		}
		if oldest.IsZero() || e.learned.Before(oldest) {
			oldestKey, oldest = k, e.learned
		}
	}
	if len(t.m) >= t.max {
		delete(t.m, oldestKey)
	}
}

// Watch registers fn, called with the ID of every segment reported from
// now on (under the table's lock: fn must be quick and must not call the
// table), and returns the IDs known now, so that a watcher misses none
// (the XDP fast path's peer map). Watch(nil) ends the watching.
func (t *Table) Watch(fn func(id []byte)) [][]byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.watch = fn
	ids := make([][]byte, 0, len(t.m))
	for k := range t.m {
		ids = append(ids, []byte(k))
	}
	return ids
}

// Lookup returns what is known of a segment, holders best first.
func (t *Table) Lookup(id []byte) (Segment, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.m[string(id)]
	if !ok {
		return Segment{}, false
	}
	if t.now().Sub(e.learned) >= t.ttl {
		delete(t.m, string(id))
		return Segment{}, false
	}
	hs := slices.Clone(e.holders)
	slices.SortStableFunc(hs, func(a, b holder) int {
		if a.failures != b.failures {
			return a.failures - b.failures
		}
		return b.lastOK.Compare(a.lastOK)
	})
	seg := Segment{ID: slices.Clone(id), Version: e.version, Size: e.size, Blocks: e.blocks,
		Complete: e.complete, Learned: e.learned}
	for _, h := range hs {
		seg.Holders = append(seg.Holders, h.Holder)
	}
	return seg, true
}

// Succeeded records that addr served a block of the segment.
func (t *Table) Succeeded(id []byte, addr netip.AddrPort) {
	t.update(id, addr, func(h *holder) { h.failures, h.lastOK = 0, t.now() })
}

// Failed records that addr could not serve a block of the segment.
func (t *Table) Failed(id []byte, addr netip.AddrPort) {
	t.update(id, addr, func(h *holder) { h.failures++ })
}

func (t *Table) update(id []byte, addr netip.AddrPort, fn func(*holder)) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if e, ok := t.m[string(id)]; ok {
		for i := range e.holders {
			if e.holders[i].Addr == addr {
				fn(&e.holders[i])
			}
		}
	}
}

// Len is the number of segments known.
func (t *Table) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.m)
}
