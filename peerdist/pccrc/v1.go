package pccrc

import (
	"encoding/binary"
	"fmt"
)

// Content Information 1.0 is little-endian throughout (protocols.md §2.3).

func algoFromV1(code uint32) (HashAlgo, bool) {
	switch code {
	case wireSHA256:
		return SHA256, true
	case wireSHA384:
		return SHA384, true
	case wireSHA512:
		return SHA512, true
	}
	return 0, false
}

func (a HashAlgo) v1Code() uint32 {
	switch a {
	case SHA384:
		return wireSHA384
	case SHA512:
		return wireSHA512
	}
	return wireSHA256
}

// Parse decodes content information of either version, telling them apart
// by their first two bytes (00 01 for V1, 00 02 for V2). The returned
// hashes alias data.
func Parse(data []byte) (*Info, error) {
	if len(data) < 2 {
		return nil, fmt.Errorf("pccrc: %d bytes: %w", len(data), ErrMalformed)
	}
	switch {
	case data[0] == 0x00 && data[1] == 0x01:
		return parseV1(data)
	case data[0] == 0x00 && data[1] == 0x02:
		return parseV2(data)
	}
	return nil, fmt.Errorf("pccrc: version bytes %02x %02x: %w", data[0], data[1], ErrMalformed)
}

func parseV1(data []byte) (*Info, error) {
	if len(data) < headerSizeV1 {
		return nil, fmt.Errorf("pccrc: v1 header: %d bytes: %w", len(data), ErrMalformed)
	}
	le := binary.LittleEndian
	algo, ok := algoFromV1(le.Uint32(data[2:]))
	if !ok {
		return nil, fmt.Errorf("pccrc: v1 dwHashAlgo %#x: %w", le.Uint32(data[2:]), ErrMalformed)
	}
	ci := &Info{
		Version:                V1,
		Algo:                   algo,
		OffsetInFirstSegment:   le.Uint32(data[6:]),
		ReadBytesInLastSegment: le.Uint32(data[10:]),
	}
	count := uint64(le.Uint32(data[14:]))
	hashSize := algo.Size()
	descSize := uint64(16 + 2*hashSize)
	// Each segment needs its description and at least a block count, so a
	// count the remaining bytes cannot hold is rejected before allocating.
	rest := data[headerSizeV1:]
	if count*(descSize+4) > uint64(len(rest)) {
		return nil, fmt.Errorf("pccrc: v1: %d segments do not fit in %d bytes: %w", count, len(rest), ErrMalformed)
	}
	ci.Segments = make([]Segment, count)
	for i := range ci.Segments {
		d := rest[:descSize]
		rest = rest[descSize:]
		if bs := le.Uint32(d[12:]); bs != BlockSize {
			return nil, fmt.Errorf("pccrc: v1 segment %d: cbBlockSize %d, must be 65536: %w", i, bs, ErrMalformed)
		}
		ci.Segments[i] = Segment{
			Offset:     le.Uint64(d[0:]),
			Size:       le.Uint32(d[8:]),
			HashOfData: d[16 : 16+hashSize : 16+hashSize],
			Secret:     d[16+hashSize : descSize : descSize],
		}
	}
	for i := range ci.Segments {
		if len(rest) < 4 {
			return nil, fmt.Errorf("pccrc: v1 segment %d: block count truncated: %w", i, ErrMalformed)
		}
		blocks := uint64(le.Uint32(rest))
		rest = rest[4:]
		if blocks*uint64(hashSize) > uint64(len(rest)) {
			return nil, fmt.Errorf("pccrc: v1 segment %d: %d block hashes do not fit: %w", i, blocks, ErrMalformed)
		}
		hashes := make([][]byte, blocks)
		for b := range hashes {
			hashes[b] = rest[:hashSize:hashSize]
			rest = rest[hashSize:]
		}
		ci.Segments[i].BlockHashes = hashes
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("pccrc: v1: %d trailing bytes: %w", len(rest), ErrMalformed)
	}
	if err := ci.Validate(); err != nil {
		return nil, err
	}
	return ci, nil
}

// MarshalBinary encodes the content information in its version's wire form.
func (ci *Info) MarshalBinary() ([]byte, error) {
	if err := ci.Validate(); err != nil {
		return nil, err
	}
	if ci.Version == V2 {
		return ci.appendV2(make([]byte, 0, ci.wireSizeV2())), nil
	}
	return ci.appendV1(make([]byte, 0, ci.wireSizeV1())), nil
}

func (ci *Info) wireSizeV1() int {
	hashSize := ci.Algo.Size()
	n := headerSizeV1
	for _, s := range ci.Segments {
		n += 16 + 2*hashSize + 4 + len(s.BlockHashes)*hashSize
	}
	return n
}

func (ci *Info) appendV1(b []byte) []byte {
	le := binary.LittleEndian
	b = append(b, 0x00, 0x01) // Version 0x0100: minor byte, then major byte
	b = le.AppendUint32(b, ci.Algo.v1Code())
	b = le.AppendUint32(b, ci.OffsetInFirstSegment)
	b = le.AppendUint32(b, ci.ReadBytesInLastSegment)
	b = le.AppendUint32(b, uint32(len(ci.Segments)))
	for _, s := range ci.Segments {
		b = le.AppendUint64(b, s.Offset)
		b = le.AppendUint32(b, s.Size)
		b = le.AppendUint32(b, BlockSize)
		b = append(b, s.HashOfData...)
		b = append(b, s.Secret...)
	}
	for _, s := range ci.Segments {
		b = le.AppendUint32(b, uint32(len(s.BlockHashes)))
		for _, h := range s.BlockHashes {
			b = append(b, h...)
		}
	}
	return b
}
