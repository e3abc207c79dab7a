package pchc

import (
	"encoding/binary"
	"fmt"
)

// MessageType is the Type field of MESSAGE_HEADER.
type MessageType uint16

// Request message types (MS-PCHC §2.2.1.1).
const (
	TypeInitialOffer MessageType = 1
	TypeSegmentInfo  MessageType = 2
	TypeBatchedOffer MessageType = 3
)

func (t MessageType) String() string {
	switch t {
	case TypeInitialOffer:
		return "INITIAL_OFFER"
	case TypeSegmentInfo:
		return "SEGMENT_INFO"
	case TypeBatchedOffer:
		return "BATCHED_OFFER"
	}
	return fmt.Sprintf("MessageType(%d)", uint16(t))
}

// Protocol major versions carried in MESSAGE_HEADER. The minor version is
// always 0.
const (
	MajorV1 uint8 = 1
	MajorV2 uint8 = 2
)

// Fixed part of every request: MESSAGE_HEADER (8 bytes) followed by
// CONNECTION_INFORMATION (8 bytes).
const (
	headerSize   = 8
	connInfoSize = 8
	prefixSize   = headerSize + connInfoSize
)

// Message is a decoded PCHC request. The concrete types are InitialOffer,
// SegmentInfo and BatchedOffer (values, not pointers).
type Message interface {
	// Type is the MESSAGE_HEADER Type of the message.
	Type() MessageType
	// AppendTo appends the encoded message to dst. It refuses values the
	// decoder would reject, so everything it writes decodes again.
	AppendTo(dst []byte) ([]byte, error)
	// Marshal returns the encoded message.
	Marshal() ([]byte, error)
}

// prefix is the decoded MESSAGE_HEADER and CONNECTION_INFORMATION.
type prefix struct {
	major uint8
	typ   MessageType
	port  uint16
}

// parsePrefix decodes the 16 fixed bytes every request starts with. The
// padding fields are ignored, as the specification says.
func parsePrefix(body []byte) (prefix, error) {
	if len(body) < prefixSize {
		return prefix{}, malformed("%d bytes, shorter than the %d-byte header and connection information", len(body), prefixSize)
	}
	minor, major := body[0], body[1]
	if minor != 0 || (major != MajorV1 && major != MajorV2) {
		return prefix{}, malformed("unsupported protocol version %d.%d", major, minor)
	}
	return prefix{
		major: major,
		typ:   MessageType(binary.BigEndian.Uint16(body[2:4])),
		port:  binary.BigEndian.Uint16(body[headerSize : headerSize+2]),
	}, nil
}

// appendPrefix appends MESSAGE_HEADER and CONNECTION_INFORMATION with zero
// padding.
func appendPrefix(dst []byte, p prefix) ([]byte, error) {
	if p.major != MajorV1 && p.major != MajorV2 {
		return dst, malformed("unsupported protocol major version %d", p.major)
	}
	dst = append(dst, 0, p.major)
	dst = binary.BigEndian.AppendUint16(dst, uint16(p.typ))
	dst = append(dst, 0, 0, 0, 0)
	dst = binary.BigEndian.AppendUint16(dst, p.port)
	return append(dst, 0, 0, 0, 0, 0, 0), nil
}

// checkEncodedSize rejects an encoding the decoder would refuse for its size.
func checkEncodedSize(size int) error {
	if size > MaxMessageSize {
		return malformed("message of %d bytes exceeds MaxMessageSize (%d)", size, MaxMessageSize)
	}
	return nil
}
