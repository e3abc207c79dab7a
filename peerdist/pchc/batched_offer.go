package pchc

import (
	"encoding/binary"
	"fmt"
)

// Hash algorithms of a BATCHED_OFFER SegmentDescriptor.
const (
	// HashSHA256 marks a PCCRC 1.0 segment (SHA-256, 64 KiB blocks).
	HashSHA256 uint8 = 0x01
	// HashTruncatedSHA512 marks a PCCRC 2.0 segment (SHA-512 truncated to
	// 32 bytes); the conformance suite sets BlockSize = SegmentSize.
	HashTruncatedSHA512 uint8 = 0x04
)

// Limits on the descriptors of one BATCHED_OFFER (MS-PCHC §2.2.1.5).
const (
	MinBatchedSegments = 1
	MaxBatchedSegments = 128
)

// HoHoDkSize is the size of a SegmentDescriptor's segment ID.
const HoHoDkSize = 32

// descriptorFixedSize is a descriptor without its content tag: BlockSize(4),
// SegmentSize(4), SizeOfContentTag(2), HashAlgorithm(1), SegmentHoHoDk(32).
const descriptorFixedSize = 4 + 4 + 2 + 1 + HoHoDkSize

// maxContentTagSize is what SizeOfContentTag (16 bits) can express.
const maxContentTagSize = 1<<16 - 1

// BatchedOffer is BATCHED_OFFER_MESSAGE (v2.0): a client offers up to 128
// segments by ID. The hosted cache always answers ResponseOK and pulls what
// it lacks. No hashes or keys arrive, so the hosted cache can only replay
// the encrypted blocks it pulls (protocols.md §4.3).
//
// The header's MajorVersion is always 2: the message has no v1 form.
type BatchedOffer struct {
	// Port is the client's MS-PCCRR listening port.
	Port uint16
	// Segments holds 1 to 128 descriptors. The message has no count field;
	// descriptors run to the end of the body.
	Segments []SegmentDescriptor
}

// SegmentDescriptor describes one offered segment.
type SegmentDescriptor struct {
	// BlockSize and SegmentSize are 4 bytes each (§9 row 12: the 2012
	// preview's 2 bytes could not hold a 32 MiB segment).
	BlockSize   uint32
	SegmentSize uint32
	// ContentTag is 1 to 65535 bytes (Windows sends 16). Aliases the
	// decoded input.
	ContentTag []byte
	// HashAlgorithm is HashSHA256 or HashTruncatedSHA512; any other value
	// fails decoding with ErrUnknownHashAlgorithm.
	HashAlgorithm uint8
	// HoHoDk is the segment ID.
	HoHoDk [HoHoDkSize]byte
}

// Type returns TypeBatchedOffer.
func (BatchedOffer) Type() MessageType { return TypeBatchedOffer }

func parseBatchedOffer(p prefix, rest []byte) (BatchedOffer, error) {
	if p.major != MajorV2 {
		return BatchedOffer{}, malformed("major version %d, BATCHED_OFFER exists only in version 2", p.major)
	}
	// First pass validates the framing and counts, so the slice is
	// allocated once and never larger than the body justifies.
	count := 0
	for off := 0; off < len(rest); count++ {
		if count == MaxBatchedSegments {
			return BatchedOffer{}, malformed("more than %d segment descriptors", MaxBatchedSegments)
		}
		n, err := descriptorSize(rest[off:])
		if err != nil {
			return BatchedOffer{}, fmt.Errorf("descriptor %d: %w", count, err)
		}
		off += n
	}
	if count < MinBatchedSegments {
		return BatchedOffer{}, malformed("no segment descriptors")
	}
	m := BatchedOffer{Port: p.port, Segments: make([]SegmentDescriptor, 0, count)}
	for off := 0; off < len(rest); {
		d, n := decodeDescriptor(rest[off:])
		m.Segments = append(m.Segments, d)
		off += n
	}
	return m, nil
}

// descriptorSize validates the descriptor at the start of b and returns its
// encoded size.
func descriptorSize(b []byte) (int, error) {
	if len(b) < descriptorFixedSize {
		return 0, malformed("%d bytes left, a descriptor needs at least %d", len(b), descriptorFixedSize)
	}
	tagLen := int(binary.BigEndian.Uint16(b[8:10]))
	if tagLen == 0 {
		return 0, malformed("empty content tag")
	}
	size := descriptorFixedSize + tagLen
	if len(b) < size {
		return 0, malformed("content tag of %d bytes overruns the body", tagLen)
	}
	if algo := b[10+tagLen]; !knownHashAlgorithm(algo) {
		return 0, unknownHashAlgorithm(algo)
	}
	return size, nil
}

// decodeDescriptor decodes a descriptor already checked by descriptorSize.
func decodeDescriptor(b []byte) (SegmentDescriptor, int) {
	tagLen := int(binary.BigEndian.Uint16(b[8:10]))
	d := SegmentDescriptor{
		BlockSize:     binary.BigEndian.Uint32(b[0:4]),
		SegmentSize:   binary.BigEndian.Uint32(b[4:8]),
		ContentTag:    b[10 : 10+tagLen : 10+tagLen],
		HashAlgorithm: b[10+tagLen],
	}
	copy(d.HoHoDk[:], b[11+tagLen:])
	return d, descriptorFixedSize + tagLen
}

// unknownHashAlgorithm wraps both ErrUnknownHashAlgorithm and ErrMalformed.
func unknownHashAlgorithm(algo uint8) error {
	return fmt.Errorf("%w %#02x: %w", ErrUnknownHashAlgorithm, algo, ErrMalformed)
}

func knownHashAlgorithm(algo uint8) bool {
	return algo == HashSHA256 || algo == HashTruncatedSHA512
}

// AppendTo appends the encoded message to dst.
func (m BatchedOffer) AppendTo(dst []byte) ([]byte, error) {
	size, err := m.size()
	if err != nil {
		return dst, fmt.Errorf("pchc: batched offer: %w", err)
	}
	if err := checkEncodedSize(size); err != nil {
		return dst, fmt.Errorf("pchc: batched offer: %w", err)
	}
	out, err := appendPrefix(dst, prefix{major: MajorV2, typ: TypeBatchedOffer, port: m.Port})
	if err != nil {
		return dst, fmt.Errorf("pchc: batched offer: %w", err)
	}
	for _, d := range m.Segments {
		out = binary.BigEndian.AppendUint32(out, d.BlockSize)
		out = binary.BigEndian.AppendUint32(out, d.SegmentSize)
		out = binary.BigEndian.AppendUint16(out, uint16(len(d.ContentTag)))
		out = append(out, d.ContentTag...)
		out = append(out, d.HashAlgorithm)
		out = append(out, d.HoHoDk[:]...)
	}
	return out, nil
}

// Marshal returns the encoded message.
func (m BatchedOffer) Marshal() ([]byte, error) {
	size, err := m.size()
	if err != nil {
		return nil, fmt.Errorf("pchc: batched offer: %w", err)
	}
	return m.AppendTo(make([]byte, 0, size))
}

// size validates the descriptors against the decoder's rules and returns
// the encoded size.
func (m BatchedOffer) size() (int, error) {
	if n := len(m.Segments); n < MinBatchedSegments || n > MaxBatchedSegments {
		return 0, malformed("%d segment descriptors, need %d to %d", n, MinBatchedSegments, MaxBatchedSegments)
	}
	size := prefixSize
	for i, d := range m.Segments {
		if len(d.ContentTag) == 0 || len(d.ContentTag) > maxContentTagSize {
			return 0, malformed("descriptor %d: content tag of %d bytes, need 1 to %d", i, len(d.ContentTag), maxContentTagSize)
		}
		if !knownHashAlgorithm(d.HashAlgorithm) {
			return 0, fmt.Errorf("descriptor %d: %w", i, unknownHashAlgorithm(d.HashAlgorithm))
		}
		size += descriptorFixedSize + len(d.ContentTag)
	}
	return size, nil
}
