package pccrc

import (
	"errors"
	"fmt"
)

// Sizes fixed by MS-PCCRC.
const (
	BlockSize         = 65536    // V1 block size (cbBlockSize MUST be this)
	SegmentSizeV1     = 32 << 20 // V1 segment size; only the last may be shorter
	MaxBlocksPerSeg   = SegmentSizeV1 / BlockSize
	MaxSegmentSizeV2  = 128 << 10 // V2 segments are non-zero and at most 128 KiB
	headerSizeV1      = 18
	headerSizeV2      = 31
	segmentDescV2Size = 4 + 32 + 32
)

// ErrMalformed is wrapped by every decoding error: the bytes are not valid
// content information.
var ErrMalformed = errors.New("malformed content information")

// Version is the content information version.
type Version int

// The content information versions.
const (
	V1 Version = 1
	V2 Version = 2
)

// Info is one piece of content information (V1 or V2): the segments that
// intersect a byte range of some content, with their hashes and secrets.
type Info struct {
	Version Version
	Algo    HashAlgo

	// OffsetInFirstSegment is where the range starts inside the first
	// listed segment (both versions).
	OffsetInFirstSegment uint32
	// ReadBytesInLastSegment (V1 only) is how many bytes of the range lie
	// in the last listed segment; 0 means "to the end of that segment",
	// which is what IIS sends for a whole file.
	ReadBytesInLastSegment uint32
	// StartInContent (V2 only) is the content offset of the first listed
	// segment; segment offsets are derived from it.
	StartInContent uint64
	// IndexOfFirstSegment (V2 only) is the zero-based index of the first
	// listed segment within the content.
	IndexOfFirstSegment uint64
	// LengthOfRange (V2 only) is the range length; 0 means the whole
	// resource (to the end of the last listed segment).
	LengthOfRange uint64
	// ChunkSegments (V2 only) records how many segments each chunk of the
	// wire form held, so that re-encoding is byte-exact; nil means a single
	// chunk.
	ChunkSegments []int

	Segments []Segment
}

// Segment describes one segment of the content.
type Segment struct {
	Offset uint64 // start of the segment in the content
	Size   uint32 // whole segment size, not just the part in the range
	// HashOfData is HoD: V1 the hash of the concatenated block hashes, V2
	// the hash of the segment bytes.
	HashOfData []byte
	// Secret is Kp, the segment secret; the block encryption key is taken
	// from it.
	Secret []byte
	// BlockHashes (V1 only) lists block hashes from block 0 up to the last
	// block that intersects the range.
	BlockHashes [][]byte
}

// ID returns the segment identifier (HoHoDk) of segment i.
func (ci *Info) ID(i int) []byte {
	s := &ci.Segments[i]
	return ci.Algo.SegmentID(s.Secret, s.HashOfData)
}

// Range returns the byte range [start, end) of the content that this
// information describes (protocols.md §2.3 and §2.4, and §9 rows 4, 6 and 8:
// V1 takes dwReadBytesInLastSegment relative to the last segment, V2 takes
// ullLengthOfRange as a length).
func (ci *Info) Range() (start, end uint64) {
	if len(ci.Segments) == 0 {
		return ci.StartInContent, ci.StartInContent
	}
	first := ci.Segments[0]
	last := ci.Segments[len(ci.Segments)-1]
	start = first.Offset + uint64(ci.OffsetInFirstSegment)
	end = last.Offset + uint64(last.Size)
	switch ci.Version {
	case V1:
		switch {
		case ci.ReadBytesInLastSegment == 0:
		case len(ci.Segments) == 1:
			end = start + uint64(ci.ReadBytesInLastSegment)
		default:
			end = last.Offset + uint64(ci.ReadBytesInLastSegment)
		}
	case V2:
		if ci.LengthOfRange != 0 {
			end = start + ci.LengthOfRange
		}
	}
	return start, end
}

// BlockCount returns the number of 64 KiB blocks in a V1 segment of the
// given size (V2 segments are a single "block", index 0).
func BlockCount(segmentSize uint32) int {
	return int((uint64(segmentSize) + BlockSize - 1) / BlockSize)
}

// BlockSpan returns the offset and length, within its segment, of V1 block
// index of a segment of the given size.
func BlockSpan(segmentSize uint32, index int) (offset, length uint32) {
	offset = uint32(index) * BlockSize
	length = min(BlockSize, segmentSize-offset)
	return offset, length
}

// Validate checks the structural rules that Marshal relies on and that a
// decoder enforces, so generated or hand-built values can be checked too.
func (ci *Info) Validate() error {
	switch ci.Version {
	case V1:
		if ci.Algo != SHA256 && ci.Algo != SHA384 && ci.Algo != SHA512 {
			return fmt.Errorf("pccrc: v1 hash algorithm %v: %w", ci.Algo, ErrMalformed)
		}
	case V2:
		if ci.Algo != TruncatedSHA512 {
			return fmt.Errorf("pccrc: v2 hash algorithm %v: %w", ci.Algo, ErrMalformed)
		}
		if ci.ChunkSegments != nil {
			total := 0
			for _, n := range ci.ChunkSegments {
				if n < 0 {
					return fmt.Errorf("pccrc: v2 chunk of %d segments: %w", n, ErrMalformed)
				}
				total += n
			}
			if total != len(ci.Segments) {
				return fmt.Errorf("pccrc: v2 chunks hold %d segments, info has %d: %w", total, len(ci.Segments), ErrMalformed)
			}
		}
	default:
		return fmt.Errorf("pccrc: version %d: %w", ci.Version, ErrMalformed)
	}
	size := ci.Algo.Size()
	for i := range ci.Segments {
		if err := ci.validateSegment(i, size); err != nil {
			return err
		}
	}
	return nil
}

func (ci *Info) validateSegment(i, hashSize int) error {
	s := &ci.Segments[i]
	if len(s.HashOfData) != hashSize || len(s.Secret) != hashSize {
		return fmt.Errorf("pccrc: segment %d: hash length: %w", i, ErrMalformed)
	}
	if s.Size == 0 {
		return fmt.Errorf("pccrc: segment %d: empty segment: %w", i, ErrMalformed)
	}
	if ci.Version == V2 {
		if s.Size > MaxSegmentSizeV2 {
			return fmt.Errorf("pccrc: segment %d: size %d over 128 KiB: %w", i, s.Size, ErrMalformed)
		}
		if len(s.BlockHashes) != 0 {
			return fmt.Errorf("pccrc: segment %d: v2 has no block hashes: %w", i, ErrMalformed)
		}
		return nil
	}
	if s.Size > SegmentSizeV1 {
		return fmt.Errorf("pccrc: segment %d: size %d over 32 MiB: %w", i, s.Size, ErrMalformed)
	}
	if n := len(s.BlockHashes); n == 0 || n > BlockCount(s.Size) {
		return fmt.Errorf("pccrc: segment %d: %d block hashes for %d blocks: %w", i, n, BlockCount(s.Size), ErrMalformed)
	}
	for _, h := range s.BlockHashes {
		if len(h) != hashSize {
			return fmt.Errorf("pccrc: segment %d: block hash length: %w", i, ErrMalformed)
		}
	}
	return nil
}

// ContentSize returns the size of the whole content when the information
// shows it: in V1 only the last segment of a file may be shorter than
// 32 MiB, so a short last segment ends the content. V2 segments vary in
// size and tell nothing.
func (ci *Info) ContentSize() (size uint64, known bool) {
	if ci.Version != V1 || len(ci.Segments) == 0 {
		return 0, false
	}
	last := ci.Segments[len(ci.Segments)-1]
	if last.Size == SegmentSizeV1 {
		return 0, false
	}
	return last.Offset + uint64(last.Size), true
}
