package report

import (
	"cmp"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/outpost-appliance/outpost/cache/store"
)

// Segment is one segment of GET /api/v1/segments.
type Segment struct {
	ID             string `json:"id"` // HoHoDk, hex
	Version        int    `json:"version"`
	Size           uint32 `json:"size"`
	Blocks         int    `json:"blocks"`
	BlocksHeld     int    `json:"blocks_held"`
	BlocksVerified int    `json:"blocks_verified"`
	// Integrity: "verified" (every held block checked against its hash),
	// "replay" (kept as received, no hashes known: V2 offers), "mixed",
	// or "empty" (no block yet).
	Integrity   string    `json:"integrity"`
	HashesKnown bool      `json:"hashes_known"`
	FirstSeen   time.Time `json:"first_seen"`
	LastAccess  time.Time `json:"last_access"`
	Hits        uint64    `json:"hits"` // blocks served
	Tags        []string  `json:"tags"`
	Bytes       int64     `json:"bytes"`
}

// Integrity values.
const (
	Verified = "verified"
	Replay   = "replay"
	Mixed    = "mixed"
	Empty    = "empty"
)

// SegmentOf converts the store's view of a segment.
func SegmentOf(info *store.SegmentInfo) Segment {
	held, verified := info.Held.Len(), info.Verified.Len()
	integrity := Mixed
	switch {
	case held == 0:
		integrity = Empty
	case verified == held:
		integrity = Verified
	case verified == 0:
		integrity = Replay
	}
	tags := info.Tags
	if tags == nil {
		tags = []string{}
	}
	return Segment{
		ID: hex.EncodeToString(info.SegmentID), Version: int(info.Version), Size: info.Size,
		Blocks: info.BlockCount, BlocksHeld: held, BlocksVerified: verified, Integrity: integrity,
		HashesKnown: info.HashesKnown, FirstSeen: info.FirstSeen.UTC(), LastAccess: info.LastAccess.UTC(),
		Hits: info.Hits, Tags: tags, Bytes: info.Bytes,
	}
}

// SegmentPage is one page of segments in ID order.
type SegmentPage struct {
	Segments []Segment `json:"segments"`
	// Next is the cursor (an ID) for the page after this one; "" at the end.
	Next string `json:"next,omitempty"`
}

// ErrNotRunning: the store is not open (the hosted cache does not run).
var ErrNotRunning = errors.New("the hosted cache is not running")

// ErrBadID: a segment ID that is not hex.
var ErrBadID = errors.New("segment IDs are hex (32 or 64 digits)")

// ParseID decodes a hex segment ID.
func ParseID(s string) ([]byte, error) {
	id, err := hex.DecodeString(s)
	if err != nil || (len(id) != 32 && len(id) != 64) {
		return nil, fmt.Errorf("%q: %w", s, ErrBadID)
	}
	return id, nil
}

// Segments lists up to limit segments after the cursor after ("" from the
// start).
func (r *Reporter) Segments(ctx context.Context, after string, limit int) (SegmentPage, error) {
	st := r.Store()
	if st == nil {
		return SegmentPage{}, ErrNotRunning
	}
	var cursor []byte
	if after != "" {
		var err error
		if cursor, err = hex.DecodeString(after); err != nil {
			return SegmentPage{}, fmt.Errorf("cursor %q: %w", after, ErrBadID)
		}
	}
	infos, next, err := st.ListSegments(ctx, cursor, limit)
	if err != nil {
		return SegmentPage{}, fmt.Errorf("listing segments: %w", err)
	}
	page := SegmentPage{Segments: make([]Segment, 0, len(infos)), Next: hex.EncodeToString(next)}
	for i := range infos {
		page.Segments = append(page.Segments, SegmentOf(&infos[i]))
	}
	return page, nil
}

// Segment reports one segment; store.ErrNotFound if it is not known.
func (r *Reporter) Segment(ctx context.Context, id []byte) (Segment, error) {
	st := r.Store()
	if st == nil {
		return Segment{}, ErrNotRunning
	}
	info, err := st.Segment(ctx, id)
	if err != nil {
		return Segment{}, err
	}
	return SegmentOf(&info), nil
}

// TopSegments ranks the segments that served the most blocks.
type TopSegments struct {
	Segments []Segment `json:"segments"`
	// Scanned segments; Truncated when the scan stopped at its bound.
	Scanned   int       `json:"scanned"`
	Truncated bool      `json:"truncated,omitempty"`
	AsOf      time.Time `json:"as_of"`
	limit     int
}

// maxTopScan bounds the records one ranking reads.
const maxTopScan = 1_000_000

// Top returns the limit segments with the most hits (then the most recent
// access). The ranking reads every record, so it is reused for
// TopSegmentsTTL.
func (r *Reporter) Top(ctx context.Context, limit int) (TopSegments, error) {
	limit = min(max(limit, 1), 100)
	st := r.Store()
	if st == nil {
		return TopSegments{}, ErrNotRunning
	}
	r.topMu.Lock()
	defer r.topMu.Unlock()
	now := r.src.Now()
	if t := r.top; t != nil && t.limit >= limit && now.Sub(t.AsOf) < r.src.TopSegmentsTTL {
		out := *t
		out.Segments = out.Segments[:min(limit, len(out.Segments))]
		return out, nil
	}
	keep := max(limit, 20)
	top := TopSegments{Segments: []Segment{}, AsOf: now.UTC(), limit: keep}
	better := func(a, b *Segment) int {
		return cmp.Or(cmp.Compare(b.Hits, a.Hits), b.LastAccess.Compare(a.LastAccess), cmp.Compare(a.ID, b.ID))
	}
	var cursor []byte
	for {
		infos, next, err := st.ListSegments(ctx, cursor, 1000)
		if err != nil {
			return TopSegments{}, fmt.Errorf("ranking segments: %w", err)
		}
		for i := range infos {
			s := SegmentOf(&infos[i])
			top.Scanned++
			if s.Hits == 0 && s.BlocksHeld == 0 {
				continue
			}
			if len(top.Segments) < keep || better(&s, &top.Segments[len(top.Segments)-1]) < 0 {
				pos, _ := slices.BinarySearchFunc(top.Segments, s, func(e Segment, t Segment) int { return better(&e, &t) })
				top.Segments = slices.Insert(top.Segments, pos, s)
				if len(top.Segments) > keep {
					top.Segments = top.Segments[:keep]
				}
			}
		}
		if next == nil {
			break
		}
		if top.Scanned >= maxTopScan {
			top.Truncated = true
			break
		}
		cursor = next
	}
	r.top = &top
	out := top
	out.Segments = out.Segments[:min(limit, len(out.Segments))]
	return out, nil
}

// ForgetTop drops the cached ranking (after a purge or a flush).
func (r *Reporter) ForgetTop() {
	r.topMu.Lock()
	r.top = nil
	r.topMu.Unlock()
}
