package pccrr

import (
	"cmp"
	"fmt"
	"math/bits"
	"slices"
)

// Block numbering limits: a segment has at most 512 blocks, so a BLOCK_RANGE
// array never needs more than 256 disjoint, non-adjacent ranges.
const (
	MaxBlocks      = 512
	MaxBlockRanges = 256
)

// BlockRange is a BLOCK_RANGE: Count blocks starting at Index. The same
// shape is a SEGMENT_RANGE, whose indexes point into a GETSEGLIST's list of
// segment IDs.
type BlockRange struct {
	Index, Count uint32
}

// SegmentRange is a SEGMENT_RANGE (see BlockRange).
type SegmentRange = BlockRange

// end is one past the last index, computed without overflow.
func (r BlockRange) end() uint64 { return uint64(r.Index) + uint64(r.Count) }

func (r BlockRange) String() string { return fmt.Sprintf("[%d,%d]", r.Index, r.Count) }

// ValidateBlockRanges checks a request's BLOCK_RANGE array: 1 to 256 ranges,
// each with Index 0-511 and Count 1 to 512-Index. Order and overlap are not
// checked: Windows sends sorted, merged ranges but accepts anything.
func ValidateBlockRanges(rs []BlockRange) error {
	return validateBlockRanges(rs, 1)
}

func validateBlockRanges(rs []BlockRange, minCount int) error {
	if len(rs) < minCount || len(rs) > MaxBlockRanges {
		return malformed("%d block ranges, want %d to %d", len(rs), minCount, MaxBlockRanges)
	}
	for _, r := range rs {
		if r.Index >= MaxBlocks || r.Count == 0 || r.end() > MaxBlocks {
			return malformed("block range %v outside blocks 0-511", r)
		}
	}
	return nil
}

// validateSegmentRanges checks what can be checked without the request:
// no empty range and no range running past 2^32.
func validateSegmentRanges(rs []SegmentRange) error {
	for _, r := range rs {
		if r.Count == 0 || r.end() > 1<<32 {
			return malformed("segment range %v is empty or overflows", r)
		}
	}
	return nil
}

// NormalizeRanges returns the ranges sorted by Index with overlapping and
// adjacent ones merged, in a new slice. Empty ranges are dropped. It works
// for segment ranges too (no 512 limit).
func NormalizeRanges(rs []BlockRange) []BlockRange {
	sorted := make([]BlockRange, 0, len(rs))
	for _, r := range rs {
		if r.Count != 0 {
			sorted = append(sorted, r)
		}
	}
	slices.SortFunc(sorted, func(a, b BlockRange) int { return cmp.Compare(a.Index, b.Index) })
	out := sorted[:0]
	for _, r := range sorted {
		if n := len(out); n > 0 && uint64(r.Index) <= out[n-1].end() {
			if end := r.end(); end > out[n-1].end() {
				out[n-1].Count = uint32(end - uint64(out[n-1].Index))
			}
			continue
		}
		out = append(out, r)
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// BlockSet is a set of block indexes 0-511 of one segment, e.g. the blocks a
// cache holds. The zero value is empty.
type BlockSet [MaxBlocks / 64]uint64

// Has reports whether block i is in the set.
func (s *BlockSet) Has(i uint32) bool {
	return i < MaxBlocks && s[i/64]&(1<<(i%64)) != 0
}

// Set adds block i. Indexes above 511 do not exist and are ignored.
func (s *BlockSet) Set(i uint32) {
	if i < MaxBlocks {
		s[i/64] |= 1 << (i % 64)
	}
}

// Clear removes block i.
func (s *BlockSet) Clear(i uint32) {
	if i < MaxBlocks {
		s[i/64] &^= 1 << (i % 64)
	}
}

// SetRange adds the blocks of r that exist (indexes up to 511).
func (s *BlockSet) SetRange(r BlockRange) {
	end := min(r.end(), MaxBlocks)
	for i := uint64(r.Index); i < end; i++ {
		s.Set(uint32(i))
	}
}

// Len is the number of blocks in the set.
func (s *BlockSet) Len() int {
	n := 0
	for _, w := range s {
		n += bits.OnesCount64(w)
	}
	return n
}

// next returns the first held block at or after from, or MaxBlocks.
func (s *BlockSet) next(from uint32) uint32 {
	for i := from; i < MaxBlocks; {
		w := s[i/64] >> (i % 64)
		if w != 0 {
			return i + uint32(bits.TrailingZeros64(w))
		}
		i = (i/64 + 1) * 64
	}
	return MaxBlocks
}

// nextMissing returns the first block at or after from that is not held.
func (s *BlockSet) nextMissing(from uint32) uint32 {
	for i := from; i < MaxBlocks; {
		w := ^s[i/64] >> (i % 64)
		if w != 0 {
			return min(i+uint32(bits.TrailingZeros64(w)), MaxBlocks)
		}
		i = (i/64 + 1) * 64
	}
	return MaxBlocks
}

// NextAfter is the NextBlockIndex field: the lowest held block with an index
// above i, or 0 if there is none (protocols.md §3.5).
func (s *BlockSet) NextAfter(i uint32) uint32 {
	if i >= MaxBlocks-1 {
		return 0
	}
	if n := s.next(i + 1); n < MaxBlocks {
		return n
	}
	return 0
}

// Ranges lists the set as sorted, merged ranges (nil when empty).
func (s *BlockSet) Ranges() []BlockRange {
	var out []BlockRange
	for i := s.next(0); i < MaxBlocks; i = s.next(i) {
		end := s.nextMissing(i)
		out = append(out, BlockRange{Index: i, Count: end - i})
		i = end
	}
	return out
}

// Intersect returns the held blocks among the requested ranges as sorted,
// merged ranges (nil when none): the BlockRanges of a MSG_BLKLIST.
// Requested blocks above 511 are ignored.
func (s *BlockSet) Intersect(requested []BlockRange) []BlockRange {
	var want BlockSet
	for _, r := range requested {
		want.SetRange(r)
	}
	for i := range want {
		want[i] &= s[i]
	}
	return want.Ranges()
}

// lastBlock is the highest block index covered by rs (0 if rs is empty).
func lastBlock(rs []BlockRange) uint32 {
	var last uint64
	for _, r := range rs {
		if r.Count != 0 && r.end()-1 > last {
			last = r.end() - 1
		}
	}
	return uint32(min(last, 1<<32-1))
}
