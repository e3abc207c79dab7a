package pchc

import "fmt"

// ParseRequest decodes a PCHC request body (one message). The returned
// Message is an InitialOffer, SegmentInfo or BatchedOffer value whose byte
// slices alias body. Every error wraps ErrMalformed; a hosted cache drops
// such a request.
//
// Bodies longer than MaxMessageSize are rejected. Every message type is
// accepted whatever URL it arrived on (§9 rows 13, 15); the caller decides
// whether to care.
func ParseRequest(body []byte) (Message, error) {
	if len(body) > MaxMessageSize {
		return nil, fmt.Errorf("pchc: request: %w", malformed("%d bytes exceeds MaxMessageSize (%d)", len(body), MaxMessageSize))
	}
	p, err := parsePrefix(body)
	if err != nil {
		return nil, fmt.Errorf("pchc: request: %w", err)
	}
	rest := body[prefixSize:]
	switch p.typ {
	case TypeInitialOffer:
		m, err := parseInitialOffer(p, rest)
		if err != nil {
			return nil, fmt.Errorf("pchc: initial offer: %w", err)
		}
		return m, nil
	case TypeSegmentInfo:
		m, err := parseSegmentInfo(p, rest)
		if err != nil {
			return nil, fmt.Errorf("pchc: segment info: %w", err)
		}
		return m, nil
	case TypeBatchedOffer:
		m, err := parseBatchedOffer(p, rest)
		if err != nil {
			return nil, fmt.Errorf("pchc: batched offer: %w", err)
		}
		return m, nil
	}
	return nil, fmt.Errorf("pchc: request: %w", malformed("unknown message type %d", uint16(p.typ)))
}
