package pchc

import (
	"encoding/binary"
	"fmt"
)

// ResponseCode is the single byte of a hosted-cache response.
type ResponseCode uint8

// Response codes (MS-PCHC §2.2.2).
const (
	// ResponseOK: nothing more is needed from the client (the hosted cache
	// already knows the segment, or has taken the offer).
	ResponseOK ResponseCode = 0
	// ResponseInterested: the hosted cache lacks the hashes of an
	// INITIAL_OFFER segment and wants the client's SEGMENT_INFO.
	ResponseInterested ResponseCode = 1
)

func (c ResponseCode) String() string {
	switch c {
	case ResponseOK:
		return "OK"
	case ResponseInterested:
		return "INTERESTED"
	}
	return fmt.Sprintf("ResponseCode(%d)", uint8(c))
}

// ResponseSize is the encoded size of a response: the TRANSPORT_HEADER
// Size (4 bytes, big-endian, always 1) and the code.
const ResponseSize = 5

// Response is the body of the hosted cache's HTTP 200 answer.
type Response struct {
	Code ResponseCode
}

// ParseResponse decodes a response body, which must be exactly
// ResponseSize bytes with Size = 1 and a known code.
func ParseResponse(body []byte) (Response, error) {
	if len(body) != ResponseSize {
		return Response{}, fmt.Errorf("pchc: response: %w", malformed("%d bytes, want %d", len(body), ResponseSize))
	}
	if size := binary.BigEndian.Uint32(body); size != 1 {
		return Response{}, fmt.Errorf("pchc: response: %w", malformed("size field %d, want 1", size))
	}
	r := Response{Code: ResponseCode(body[4])}
	if !r.Code.known() {
		return Response{}, fmt.Errorf("pchc: response: %w", malformed("unknown response code %d", body[4]))
	}
	return r, nil
}

func (c ResponseCode) known() bool { return c == ResponseOK || c == ResponseInterested }

// AppendTo appends the encoded response to dst.
func (r Response) AppendTo(dst []byte) ([]byte, error) {
	if !r.Code.known() {
		return dst, fmt.Errorf("pchc: response: %w", malformed("unknown response code %d", uint8(r.Code)))
	}
	dst = binary.BigEndian.AppendUint32(dst, 1)
	return append(dst, byte(r.Code)), nil
}

// Marshal returns the encoded response.
func (r Response) Marshal() ([]byte, error) {
	return r.AppendTo(make([]byte, 0, ResponseSize))
}
