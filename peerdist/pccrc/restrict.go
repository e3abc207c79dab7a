package pccrc

import (
	"fmt"
	"slices"
)

// Restrict returns the content information a server sends for a request
// of the byte range [start, start+length): the segments that intersect the
// range, with the header fields that locate the range inside them. ci must
// describe the content from its first byte (as GenerateV1/V2 produce it).
// For V1 each segment's block-hash list runs from block 0 to the last block
// touching the range (protocols.md §2.3 and §9 row 5).
func (ci *Info) Restrict(start, length uint64) (*Info, error) {
	_, contentEnd := ci.Range()
	end := start + length
	if length == 0 || end < start || end > contentEnd || len(ci.Segments) == 0 || ci.Segments[0].Offset != 0 || ci.IndexOfFirstSegment != 0 {
		return nil, fmt.Errorf("pccrc: range %d+%d: outside the content [0, %d)", start, length, contentEnd)
	}
	first := ci.segmentAt(start)
	last := ci.segmentAt(end - 1)
	out := &Info{
		Version:              ci.Version,
		Algo:                 ci.Algo,
		OffsetInFirstSegment: uint32(start - ci.Segments[first].Offset),
		Segments:             slices.Clone(ci.Segments[first : last+1]),
	}
	lastSeg := &out.Segments[len(out.Segments)-1]
	switch ci.Version {
	case V1:
		if first == last {
			out.ReadBytesInLastSegment = uint32(length)
		} else {
			out.ReadBytesInLastSegment = uint32(end - lastSeg.Offset)
		}
		lastBlock := int((end - 1 - lastSeg.Offset) / BlockSize)
		lastSeg.BlockHashes = lastSeg.BlockHashes[:lastBlock+1]
	case V2:
		out.StartInContent = out.Segments[0].Offset
		out.IndexOfFirstSegment = uint64(first)
		out.LengthOfRange = length
	}
	return out, nil
}

// segmentAt returns the index of the segment holding content offset off.
func (ci *Info) segmentAt(off uint64) int {
	i, _ := slices.BinarySearchFunc(ci.Segments, off, func(s Segment, off uint64) int {
		switch {
		case s.Offset+uint64(s.Size) <= off:
			return -1
		case s.Offset > off:
			return 1
		}
		return 0
	})
	return i
}
