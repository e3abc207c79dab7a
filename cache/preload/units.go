package preload

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/outpost-appliance/outpost/cache/store"
	"github.com/outpost-appliance/outpost/peerdist/pccrc"
)

// Store is what preloading needs of the segment store (*store.Store).
type Store interface {
	AddSegmentInfo(ctx context.Context, version pccrc.Version, algo pccrc.HashAlgo, seg pccrc.Segment, contentTag []byte) ([]byte, error)
	Segment(ctx context.Context, segmentID []byte) (store.SegmentInfo, error)
	PutPlainBlock(ctx context.Context, segmentID []byte, index uint32, plain []byte) (store.PutResult, error)
	Sync(ctx context.Context) error
}

// ContentTag is the content tag preloaded and injected segments are
// recorded under (the store counts it as "Other").
var ContentTag = []byte("Outpost-Preload")

// content is one piece of content information being ingested and what is
// known of its segments in the store.
type content struct {
	ci  *pccrc.Info
	ids [][]byte
	// known: the store knows the segment's hashes (AddSegmentInfo done).
	known []bool
}

func newContent(ci *pccrc.Info) *content {
	c := &content{ci: ci, ids: make([][]byte, len(ci.Segments)), known: make([]bool, len(ci.Segments))}
	for i := range ci.Segments {
		c.ids[i] = ci.ID(i)
	}
	return c
}

// unit is what is verified and stored whole: a V1 block or a V2 segment.
type unit struct {
	start, end uint64 // content offsets
	set        int    // index of its content in the ingestion
	seg        int    // segment index in that content information
	block      uint32 // V1 block index; 0 for V2
}

func (u unit) size() uint64 { return u.end - u.start }

// checkWhole checks that ci describes a whole resource of size bytes from
// its first byte, with every hash a store needs: what an origin sends for
// a GET without Range, and what inject computes.
func checkWhole(ci *pccrc.Info, size uint64) error {
	if err := ci.Validate(); err != nil {
		return err
	}
	start, end := ci.Range()
	if start != 0 || end != size {
		return fmt.Errorf("content information covers bytes %d-%d, the content has %d bytes", start, end, size)
	}
	if ci.IndexOfFirstSegment != 0 {
		return fmt.Errorf("content information starts at segment %d, not the first", ci.IndexOfFirstSegment)
	}
	var off uint64
	for i, s := range ci.Segments {
		if s.Offset != off {
			return fmt.Errorf("segment %d starts at %d, expected %d", i, s.Offset, off)
		}
		if ci.Version == pccrc.V1 && len(s.BlockHashes) != pccrc.BlockCount(s.Size) {
			return fmt.Errorf("segment %d lists %d of its %d block hashes", i, len(s.BlockHashes), pccrc.BlockCount(s.Size))
		}
		off += uint64(s.Size)
	}
	if off != size {
		return fmt.Errorf("segments cover %d bytes, the content has %d", off, size)
	}
	return nil
}

// units lists every unit of the content, in content order.
func (c *content) units(set int) []unit {
	var out []unit
	for i, s := range c.ci.Segments {
		if c.ci.Version == pccrc.V2 {
			out = append(out, unit{start: s.Offset, end: s.Offset + uint64(s.Size), set: set, seg: i})
			continue
		}
		for b := range pccrc.BlockCount(s.Size) {
			off, n := pccrc.BlockSpan(s.Size, b)
			start := s.Offset + uint64(off)
			out = append(out, unit{start: start, end: start + uint64(n), set: set, seg: i, block: uint32(b)})
		}
	}
	return out
}

// tally is what a plan found already held.
type tally struct {
	units, heldUnits int
	bytes, heldBytes uint64
}

// plan reads which units of the contents the store lacks, in content
// order (ties: shorter first). Segments the store knows only from an
// offer (hashes unknown, blocks kept for replay) are given their hashes
// now, so the replayed blocks are verified and counted.
func plan(ctx context.Context, st Store, contents []*content) ([]unit, tally, error) {
	var missing []unit
	var t tally
	for set, c := range contents {
		all := c.units(set) // grouped by segment, in order
		t.units += len(all)
		for _, u := range all {
			t.bytes += u.size()
		}
		for i, rest := 0, all; i < len(c.ci.Segments); i++ {
			n := 0
			for n < len(rest) && rest[n].seg == i {
				n++
			}
			segUnits := rest[:n]
			rest = rest[n:]
			info, err := st.Segment(ctx, c.ids[i])
			if err == nil && !info.HashesKnown {
				if err := c.register(ctx, st, i); err != nil {
					return nil, tally{}, err
				}
				info, err = st.Segment(ctx, c.ids[i])
			}
			switch {
			case errors.Is(err, store.ErrNotFound):
				missing = append(missing, segUnits...)
				continue
			case err != nil:
				return nil, tally{}, fmt.Errorf("reading the store: %w", err)
			}
			c.known[i] = info.HashesKnown
			for _, u := range segUnits {
				if c.known[i] && info.Held.Has(u.block) {
					t.heldUnits++
					t.heldBytes += u.size()
					continue
				}
				missing = append(missing, u)
			}
		}
	}
	slices.SortStableFunc(missing, func(a, b unit) int {
		if a.start != b.start {
			return cmpU64(a.start, b.start)
		}
		return cmpU64(a.end, b.end)
	})
	return missing, t, nil
}

func cmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// register records segment i's hashes in the store.
func (c *content) register(ctx context.Context, st Store, i int) error {
	if c.known[i] {
		return nil
	}
	if _, err := st.AddSegmentInfo(ctx, c.ci.Version, c.ci.Algo, c.ci.Segments[i], ContentTag); err != nil {
		return fmt.Errorf("segment %d (%x): recording its hashes: %w", i, c.ids[i], err)
	}
	c.known[i] = true
	return nil
}

// interval is a byte range [start, end) of the content.
type interval struct{ start, end uint64 }

// intervals merges the units' byte ranges (sorted by start) into the
// fewest ranges that cover exactly them: bytes no missing unit needs are
// never fetched.
func intervals(units []unit) []interval {
	var out []interval
	for _, u := range units {
		if n := len(out); n > 0 && u.start <= out[n-1].end {
			out[n-1].end = max(out[n-1].end, u.end)
			continue
		}
		out = append(out, interval{u.start, u.end})
	}
	return out
}

func totalBytes(ivs []interval) uint64 {
	var n uint64
	for _, iv := range ivs {
		n += iv.end - iv.start
	}
	return n
}

// MismatchError is data that does not match its content information:
// nothing of it was stored.
type MismatchError struct {
	Version pccrc.Version
	Segment int
	Block   uint32
	Offset  uint64
	Err     error
}

func (e *MismatchError) Error() string {
	if e.Version == pccrc.V2 {
		return fmt.Sprintf("V2 segment %d (offset %d) does not match its content information: %v", e.Segment, e.Offset, e.Err)
	}
	return fmt.Sprintf("V1 segment %d block %d (offset %d) does not match its content information: %v", e.Segment, e.Block, e.Offset, e.Err)
}

func (e *MismatchError) Unwrap() error { return e.Err }

// ingest stores units from their bytes: it registers a segment's hashes
// with its first unit, and every unit is verified by the store.
type ingest struct {
	st       Store
	contents []*content
	// stored is called for every unit handed to the store.
	stored func(u unit, fresh bool)
}

func (in *ingest) deliver(ctx context.Context, u unit, data []byte) error {
	c := in.contents[u.set]
	if err := c.register(ctx, in.st, u.seg); err != nil {
		return err
	}
	res, err := in.st.PutPlainBlock(ctx, c.ids[u.seg], u.block, data)
	if err != nil {
		if errors.Is(err, store.ErrVerify) {
			return &MismatchError{Version: c.ci.Version, Segment: u.seg, Block: u.block, Offset: u.start, Err: err}
		}
		return fmt.Errorf("storing segment %d block %d: %w", u.seg, u.block, err)
	}
	if in.stored != nil {
		in.stored(u, res.Stored)
	}
	return nil
}

// errShortBody: the data ended before the units it should hold.
var errShortBody = errors.New("the data ended early")

// feed reads r, whose first byte is content offset base, and hands each
// of units (sorted by start, all at or after base) to deliver as soon as
// its bytes are in. Bytes no unit needs are read and dropped, so r may be
// the whole content. Memory is bounded by the largest unit plus a read,
// whatever r's length. It stops once the last unit is delivered, leaving
// the rest of r unread.
func feed(ctx context.Context, r io.Reader, base uint64, units []unit, deliver func(context.Context, unit, []byte) error) error {
	var (
		buf      = make([]byte, 0, 2*pccrc.MaxSegmentSizeV2)
		bufStart = base // content offset of buf[0]
		pos      = base // content offset of the next byte to read
		next     int    // units[next:] have not started yet
		active   []unit // started, not complete
		chunk    = make([]byte, 32<<10)
	)
	for next < len(units) || len(active) > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, err := r.Read(chunk)
		if n > 0 {
			// The lowest offset a unit still needs (active keeps the
			// units' start order); bytes below it are dropped.
			need := pos + uint64(n)
			if len(active) > 0 {
				need = active[0].start
			} else if next < len(units) {
				need = min(need, units[next].start)
			}
			if drop := min(need, pos) - bufStart; drop > 0 {
				buf = buf[:copy(buf, buf[drop:])]
				bufStart += drop
			}
			skip := uint64(0)
			if len(buf) == 0 && need > pos {
				skip = min(need, pos+uint64(n)) - pos
				bufStart = pos + skip
			}
			buf = append(buf, chunk[skip:n]...)
			pos += uint64(n)
			for next < len(units) && units[next].start < pos {
				active = append(active, units[next])
				next++
			}
			kept := active[:0]
			for _, u := range active {
				if u.end > pos {
					kept = append(kept, u)
					continue
				}
				if derr := deliver(ctx, u, buf[u.start-bufStart:u.end-bufStart]); derr != nil {
					return derr
				}
			}
			active = kept
		}
		switch {
		case err == io.EOF && (next < len(units) || len(active) > 0):
			return fmt.Errorf("%w at offset %d", errShortBody, pos)
		case err == io.EOF:
			return nil
		case err != nil:
			return err
		}
	}
	return nil
}
