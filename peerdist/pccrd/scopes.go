package pccrd

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
)

// V1 scope tokens are segment IDs (HoHoDk) as hex text, one token per
// segment. The ID is as long as the content's hash: SHA-256, -384 or -512.
func validV1IDLength(n int) bool { return n == 32 || n == 48 || n == 64 }

// decodeV1Token decodes one V1 scope token. Either case is accepted: the
// spec compares case-sensitively but never fixes the case, and clients
// differ (docs/protocols.md §5.2, §9 row 20).
func decodeV1Token(token string) ([]byte, error) {
	if len(token)%2 != 0 || !validV1IDLength(len(token)/2) {
		return nil, fmt.Errorf("%w: scope token of %d characters is not a 32, 48 or 64-byte segment ID in hex", ErrMalformed, len(token))
	}
	id, err := hex.DecodeString(token)
	if err != nil {
		return nil, fmt.Errorf("%w: scope token %.16q… is not hex", ErrMalformed, token)
	}
	return id, nil
}

// encodeV1Token formats a segment ID in upper-case hex, as Windows and the
// Microsoft test suite do.
func encodeV1Token(id []byte) (string, error) {
	if !validV1IDLength(len(id)) {
		return "", fmt.Errorf("V1 segment ID of %d bytes (want 32, 48 or 64)", len(id))
	}
	return strings.ToUpper(hex.EncodeToString(id)), nil
}

// parseV1Scopes splits V1 Scopes text into its tokens and decodes them.
func parseV1Scopes(text string) (tokens []string, ids [][]byte, err error) {
	tokens = fieldsXML(text)
	if len(tokens) == 0 {
		return nil, nil, fmt.Errorf("%w: empty scopes", ErrMalformed)
	}
	ids = make([][]byte, len(tokens))
	for i, token := range tokens {
		if ids[i], err = decodeV1Token(token); err != nil {
			return nil, nil, err
		}
	}
	return tokens, ids, nil
}

// The V2 probe scope is one base64 token of SegmentHashSize (2 bytes,
// big-endian, always 32 for truncated SHA-512), SegmentHashCount (1 byte)
// and that many segment IDs (MS-PCCRD §2.2.3.3).
const (
	v2SegmentIDSize  = 32
	v2ScopeHeaderLen = 3
	v2MaxSegmentIDs  = 255
)

// v2Base64 is the standard alphabet with padding; Strict rejects non-zero
// padding bits so that one byte string has exactly one spelling.
func v2Base64() *base64.Encoding { return base64.StdEncoding.Strict() }

// decodeV2Scope decodes a V2 probe scope token. The IDs alias one buffer
// (capacity-limited so an append cannot overwrite a neighbour).
func decodeV2Scope(token string) ([][]byte, error) {
	raw, err := v2Base64().DecodeString(token)
	if err != nil {
		return nil, fmt.Errorf("%w: V2 scope is not base64: %v", ErrMalformed, err)
	}
	if len(raw) < v2ScopeHeaderLen {
		return nil, fmt.Errorf("%w: V2 scope of %d bytes has no header", ErrMalformed, len(raw))
	}
	if size := int(raw[0])<<8 | int(raw[1]); size != v2SegmentIDSize {
		return nil, fmt.Errorf("%w: V2 SegmentHashSize %d, want %d", ErrMalformed, size, v2SegmentIDSize)
	}
	count := int(raw[2])
	if count == 0 {
		return nil, fmt.Errorf("%w: V2 scope lists no segments", ErrMalformed)
	}
	if want := v2ScopeHeaderLen + count*v2SegmentIDSize; len(raw) != want {
		return nil, fmt.Errorf("%w: V2 scope claims %d segment IDs (%d bytes) but holds %d bytes", ErrMalformed, count, want, len(raw))
	}
	ids := make([][]byte, count)
	for i := range ids {
		start := v2ScopeHeaderLen + i*v2SegmentIDSize
		ids[i] = raw[start : start+v2SegmentIDSize : start+v2SegmentIDSize]
	}
	return ids, nil
}

// encodeV2Scope builds the V2 probe scope token for ids.
func encodeV2Scope(ids [][]byte) (string, error) {
	if len(ids) == 0 || len(ids) > v2MaxSegmentIDs {
		return "", fmt.Errorf("V2 probe with %d segment IDs (want 1 to %d)", len(ids), v2MaxSegmentIDs)
	}
	raw := make([]byte, 0, v2ScopeHeaderLen+len(ids)*v2SegmentIDSize)
	raw = append(raw, 0, v2SegmentIDSize, byte(len(ids)))
	for i, id := range ids {
		if len(id) != v2SegmentIDSize {
			return "", fmt.Errorf("V2 segment ID %d is %d bytes, want %d", i, len(id), v2SegmentIDSize)
		}
		raw = append(raw, id...)
	}
	return v2Base64().EncodeToString(raw), nil
}
