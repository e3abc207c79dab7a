package store

import (
	"sync"

	"github.com/outpost-appliance/outpost/peerdist/pchc"
)

// Stats are the store's figures for the management API and metrics.
// Counters (evictions, rejects, …) count since Open.
type Stats struct {
	Bytes          int64 // live data: held blocks (IV + ciphertext) and hashes
	LimitBytes     int64 // effective limit (the smaller of bytes and percent); 0 = none
	Segments       int64 // segment records, including ones with no block yet
	HeldSegments   int64 // segments holding at least one block
	Blocks         int64
	VerifiedBlocks int64 // hash-checked on the way in; the rest are replayed
	TagBytes       map[string]int64

	Evicted        map[Reason]int64 // segments evicted, by reason
	EvictedBytes   int64
	Deleted        int64 // segments deleted by an operator
	CorruptBlocks  int64 // blocks dropped after failing their checksum
	DiskFullPuts   int64 // blocks refused for lack of space
	FailedPuts     int64 // queued blocks whose commit failed
	DiscardedPuts  int64 // queued blocks whose segment was deleted or changed before the commit
	Commits        int64 // group commits (one sync each)
	CommittedPuts  int64 // blocks written by those commits
	GCRuns         int64 // value-log files rewritten or removed
	DiskBytes      int64 // store directory size on disk (last measured)
	FilesystemSize uint64
	FilesystemFree uint64
}

// counters is the live accounting. The writer changes it; Stats reads it.
type counters struct {
	mu             sync.Mutex
	bytes          int64
	segments       int64
	heldSegments   int64
	blocks         int64
	verifiedBlocks int64
	tagBytes       [pchc.NumTags]int64

	evicted         map[Reason]int64
	evictedBytes    int64
	deleted         int64
	corruptBlocks   int64
	diskFullRejects int64
	discardedPuts   int64
	commits         int64
	committedBlocks int64
	gcRuns          int64
	evictedSinceGC  int64

	limit     int64
	diskBytes int64
	fsSize    uint64
	fsFree    uint64
}

func (c *counters) add(fn func(*counters)) {
	c.mu.Lock()
	fn(c)
	c.mu.Unlock()
}

// account moves the totals from a record's old state to its new one (nil:
// absent).
func (c *counters) account(before, after *record) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.apply(before, -1)
	c.apply(after, +1)
}

func (c *counters) apply(r *record, sign int64) {
	if r == nil {
		return
	}
	n := r.bytes()
	c.bytes += sign * n
	c.segments += sign
	held := int64(r.held.Len())
	if held > 0 {
		c.heldSegments += sign
	}
	c.blocks += sign * held
	c.verifiedBlocks += sign * int64(r.verified.Len())
	for i := range pchc.NumTags {
		if r.tags&(1<<i) != 0 {
			c.tagBytes[i] += sign * n
		}
	}
}

func (c *counters) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.bytes, c.segments, c.heldSegments, c.blocks, c.verifiedBlocks = 0, 0, 0, 0, 0
	c.tagBytes = [pchc.NumTags]int64{}
}

// Stats returns the current figures. A segment offered under several
// content tags counts under each in TagBytes.
func (s *Store) Stats() Stats {
	c := &s.stats
	c.mu.Lock()
	defer c.mu.Unlock()
	st := Stats{
		Bytes:          c.bytes,
		LimitBytes:     c.limit,
		Segments:       c.segments,
		HeldSegments:   c.heldSegments,
		Blocks:         c.blocks,
		VerifiedBlocks: c.verifiedBlocks,
		TagBytes:       make(map[string]int64, pchc.NumTags),
		Evicted:        make(map[Reason]int64, len(c.evicted)),
		EvictedBytes:   c.evictedBytes,
		Deleted:        c.deleted,
		CorruptBlocks:  c.corruptBlocks,
		DiskFullPuts:   c.diskFullRejects,
		DiscardedPuts:  c.discardedPuts,
		Commits:        c.commits,
		CommittedPuts:  c.committedBlocks,
		GCRuns:         c.gcRuns,
		DiskBytes:      c.diskBytes,
		FilesystemSize: c.fsSize,
		FilesystemFree: c.fsFree,
	}
	for i, name := range pchc.TagNames() {
		st.TagBytes[name] = c.tagBytes[i]
	}
	st.FailedPuts = s.failedPuts.Load()
	for r, n := range c.evicted {
		st.Evicted[r] = n
	}
	return st
}
