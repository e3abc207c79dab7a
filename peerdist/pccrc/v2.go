package pccrc

import (
	"encoding/binary"
	"fmt"
)

// Content Information 2.0 is big-endian throughout (protocols.md §2.4).

func parseV2(data []byte) (*Info, error) {
	if len(data) < headerSizeV2 {
		return nil, fmt.Errorf("pccrc: v2 header: %d bytes: %w", len(data), ErrMalformed)
	}
	be := binary.BigEndian
	// bHashAlgo 0x04 is the only value: the spec's example 0x01 is wrong
	// (protocols.md §9 row 3).
	if data[2] != wireTruncatedSHA512 {
		return nil, fmt.Errorf("pccrc: v2 bHashAlgo %#x: %w", data[2], ErrMalformed)
	}
	ci := &Info{
		Version:              V2,
		Algo:                 TruncatedSHA512,
		StartInContent:       be.Uint64(data[3:]),
		IndexOfFirstSegment:  be.Uint64(data[11:]),
		OffsetInFirstSegment: be.Uint32(data[19:]),
		LengthOfRange:        be.Uint64(data[23:]),
	}
	// Count segments first so the slices are allocated once, to size.
	total, chunks := 0, 0
	for rest := data[headerSizeV2:]; len(rest) > 0; chunks++ {
		if len(rest) < 5 {
			return nil, fmt.Errorf("pccrc: v2 chunk %d header truncated: %w", chunks, ErrMalformed)
		}
		if rest[0] != 0x00 {
			return nil, fmt.Errorf("pccrc: v2 chunk %d type %#x: %w", chunks, rest[0], ErrMalformed)
		}
		n := uint64(be.Uint32(rest[1:]))
		if n%segmentDescV2Size != 0 || n > uint64(len(rest)-5) {
			return nil, fmt.Errorf("pccrc: v2 chunk %d data length %d: %w", chunks, n, ErrMalformed)
		}
		total += int(n / segmentDescV2Size)
		rest = rest[5+n:]
	}
	ci.Segments = make([]Segment, 0, total)
	// The common shapes (no chunk for no segments, one chunk for all) need
	// no record; anything else is kept so that re-encoding is byte-exact.
	if !(chunks == 0 || chunks == 1 && total > 0) {
		ci.ChunkSegments = make([]int, 0, chunks)
	}
	offset := ci.StartInContent
	for rest := data[headerSizeV2:]; len(rest) > 0; {
		n := int(be.Uint32(rest[1:]))
		chunk := rest[5 : 5+n]
		rest = rest[5+n:]
		if ci.ChunkSegments != nil {
			ci.ChunkSegments = append(ci.ChunkSegments, n/segmentDescV2Size)
		}
		for ; len(chunk) > 0; chunk = chunk[segmentDescV2Size:] {
			size := be.Uint32(chunk)
			ci.Segments = append(ci.Segments, Segment{
				Offset:     offset,
				Size:       size,
				HashOfData: chunk[4:36:36],
				Secret:     chunk[36:68:68],
			})
			offset += uint64(size)
		}
	}
	if err := ci.Validate(); err != nil {
		return nil, err
	}
	return ci, nil
}

// chunkLayout returns the number of segments in each chunk of the wire form.
func (ci *Info) chunkLayout() []int {
	switch {
	case ci.ChunkSegments != nil:
		return ci.ChunkSegments
	case len(ci.Segments) == 0:
		return nil
	}
	return []int{len(ci.Segments)}
}

func (ci *Info) wireSizeV2() int {
	return headerSizeV2 + 5*len(ci.chunkLayout()) + segmentDescV2Size*len(ci.Segments)
}

func (ci *Info) appendV2(b []byte) []byte {
	be := binary.BigEndian
	b = append(b, 0x00, 0x02, wireTruncatedSHA512)
	b = be.AppendUint64(b, ci.StartInContent)
	b = be.AppendUint64(b, ci.IndexOfFirstSegment)
	b = be.AppendUint32(b, ci.OffsetInFirstSegment)
	b = be.AppendUint64(b, ci.LengthOfRange)
	segs := ci.Segments
	for _, n := range ci.chunkLayout() {
		b = append(b, 0x00)
		b = be.AppendUint32(b, uint32(n*segmentDescV2Size))
		for _, s := range segs[:n] {
			b = be.AppendUint32(b, s.Size)
			b = append(b, s.HashOfData...)
			b = append(b, s.Secret...)
		}
		segs = segs[n:]
	}
	return b
}
