package store

import (
	"sync"
	"sync/atomic"

	"github.com/outpost-appliance/outpost/peerdist/pccrr"
)

// PutBlock returns before the group commit that indexes the block, but a
// block must be readable as soon as PutBlock has returned: its bytes are
// in the pack already (in the page cache), so pending blocks are kept here
// until their commit settles. ReadBlock and Segment look here after the
// index, and PutBlock of a pending block is a duplicate. At most the queue
// and the commits in flight are pending: a few hundred entries.

type pendingBlocks struct {
	mu       sync.RWMutex
	segments map[string]map[uint32]packEntry
	// settled counts blocks that stopped being pending. A block leaves
	// only after its commit, so a reader whose transaction is older than
	// the commit can miss it in both places; the count tells it to look
	// again with a fresh transaction (Store.entry).
	settled atomic.Uint64
}

func (pb *pendingBlocks) init() { pb.segments = make(map[string]map[uint32]packEntry) }

func (pb *pendingBlocks) add(segmentID []byte, index uint32, e packEntry) {
	pb.mu.Lock()
	defer pb.mu.Unlock()
	m := pb.segments[string(segmentID)]
	if m == nil {
		m = make(map[uint32]packEntry)
		pb.segments[string(segmentID)] = m
	}
	m[index] = e
}

// remove forgets a pending block if it is still the one at e's place.
func (pb *pendingBlocks) remove(segmentID []byte, index uint32, e packEntry) {
	pb.mu.Lock()
	defer pb.mu.Unlock()
	m := pb.segments[string(segmentID)]
	if cur, ok := m[index]; ok && cur.pack == e.pack && cur.offset == e.offset {
		pb.settled.Add(1)
		delete(m, index)
		if len(m) == 0 {
			delete(pb.segments, string(segmentID))
		}
	}
}

func (pb *pendingBlocks) get(segmentID []byte, index uint32) (packEntry, bool) {
	pb.mu.RLock()
	defer pb.mu.RUnlock()
	e, ok := pb.segments[string(segmentID)][index]
	return e, ok
}

// held adds a segment's pending blocks to held and verified.
func (pb *pendingBlocks) held(segmentID []byte, held, verified *pccrr.BlockSet) {
	pb.mu.RLock()
	defer pb.mu.RUnlock()
	for index, e := range pb.segments[string(segmentID)] {
		held.Set(index)
		if e.flags&metaVerified != 0 {
			verified.Set(index)
		}
	}
}

// clear forgets everything (Flush).
func (pb *pendingBlocks) clear() {
	pb.mu.Lock()
	clear(pb.segments)
	pb.settled.Add(1)
	pb.mu.Unlock()
}
