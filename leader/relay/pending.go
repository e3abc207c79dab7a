package relay

import (
	"context"
	"time"

	"github.com/outpost-appliance/outpost/cache/store"
	"github.com/outpost-appliance/outpost/leader/holders"
	"github.com/outpost-appliance/outpost/peerdist/pccrc"
)

// A V1 segment relayed from a Windows client has no known size, and the
// store needs one. Its short last block tells it (SegmentShape); a full
// block tells nothing. So full blocks of such a segment wait here, in
// bounded memory, for the short block; a segment that shows none within
// the bounds is recorded as a full 32 MiB segment, which is what long
// segments are.
const (
	maxPendingBlocks   = 8  // per segment: 512 KiB
	maxPendingSegments = 16 // 8 MiB in all
	pendingTTL         = 30 * time.Second
)

type pendingSegment struct {
	seg    holders.Segment
	blocks map[uint32]store.Block
	since  time.Time
}

// hold takes a block of a V1 segment of unknown size that the store does
// not know yet: it is kept pending, or, with the short last block, the
// segment is recorded with its real size and every pending block stored.
// It reports false for blocks to store at once.
func (s *Server) hold(ctx context.Context, st *store.Store, seg holders.Segment, index uint32, block store.Block) bool {
	if seg.Size != 0 || seg.Version == pccrc.V2 {
		return false
	}
	s.offeredMu.Lock()
	offered := s.offered[string(seg.ID)]
	s.offeredMu.Unlock()
	if offered {
		return false
	}
	if _, err := st.Segment(ctx, seg.ID); err == nil {
		return false
	}
	now := time.Now()
	var flush []*pendingSegment
	s.pendingMu.Lock()
	for id, p := range s.pending {
		if now.Sub(p.since) > pendingTTL {
			flush = append(flush, p)
			delete(s.pending, id)
		}
	}
	p := s.pending[string(seg.ID)]
	if len(block.Ciphertext) < pccrc.BlockSize {
		// The last block: the size is known, everything can be stored.
		delete(s.pending, string(seg.ID))
		s.pendingMu.Unlock()
		s.flushLater(flush)
		_, seg.Size = SegmentShape(pccrc.V1, 0, index, len(block.Ciphertext))
		seg.Version = pccrc.V1
		if p != nil {
			for i, b := range p.blocks {
				if i < index {
					s.put(ctx, st, seg, i, b)
				}
			}
		}
		s.put(ctx, st, seg, index, block)
		return true
	}
	if p == nil {
		if len(s.pending) >= maxPendingSegments {
			var oldest *pendingSegment
			for _, q := range s.pending {
				if oldest == nil || q.since.Before(oldest.since) {
					oldest = q
				}
			}
			delete(s.pending, string(oldest.seg.ID))
			flush = append(flush, oldest)
		}
		p = &pendingSegment{seg: seg, blocks: map[uint32]store.Block{}, since: now}
		s.pending[string(seg.ID)] = p
	}
	p.blocks[index] = block
	if len(p.blocks) >= maxPendingBlocks {
		delete(s.pending, string(seg.ID))
		flush = append(flush, p)
	}
	s.pendingMu.Unlock()
	s.flushLater(flush)
	return true
}

// flushLater stores pending segments as full 32 MiB segments, each under
// its own segment lock, off the caller's (which holds another's).
func (s *Server) flushLater(segs []*pendingSegment) {
	for _, p := range segs {
		go func() {
			lock := &s.segLocks[stripe(p.seg.ID)]
			lock.Lock()
			defer lock.Unlock()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			st := s.cfg.Store()
			if st == nil {
				return
			}
			for i, b := range p.blocks {
				s.put(ctx, st, p.seg, i, b)
			}
		}()
	}
}
