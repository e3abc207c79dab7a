package pchc

import (
	"errors"
	"fmt"
)

// ErrMalformed is wrapped by every decoding and encoding error: the bytes
// (or the message value) do not form a valid PCHC message. A hosted cache
// drops such requests; the conformance suite expects invalid batches to be
// dropped silently (protocols.md §4.3).
var ErrMalformed = errors.New("malformed PCHC message")

// ErrUnknownHashAlgorithm is wrapped, together with ErrMalformed, when a
// BATCHED_OFFER descriptor names a hash algorithm other than HashSHA256 or
// HashTruncatedSHA512. The conformance suite treats this case differently
// from the other invalid batches: its BatchedOffer_HashAlgoInvalid test
// expects ResponseOK and no retrieval, whereas it expects batches with 0 or
// more than 128 descriptors or an empty content tag to be dropped without
// a response. A hosted cache should therefore answer OK to this error and
// pull nothing.
var ErrUnknownHashAlgorithm = errors.New("unknown hash algorithm")

// MaxMessageSize caps a request body. The largest legitimate message is a
// SEGMENT_INFO for a 32 MiB V1 segment hashed with SHA-512 (512 block
// hashes of 64 bytes, about 33 KB); a full BATCHED_OFFER of 128 descriptors
// with 16-byte tags is about 7.5 KB. 64 KiB leaves room for both, and an
// HTTP server should stop reading a body at this size.
const MaxMessageSize = 64 << 10

// malformed returns an error wrapping ErrMalformed with a description.
func malformed(format string, args ...any) error {
	return fmt.Errorf(format+": %w", append(args, ErrMalformed)...)
}
