package pchc

import (
	"bytes"
	"testing"

	"github.com/outpost-appliance/outpost/peerdist/allocs"
)

// Decoding allocates at most one SegmentDescriptor (72 bytes) per 44-byte
// minimal descriptor, plus fixed costs (boxing the message, wrapped error
// values with their formatted text).
const (
	allocFactor = 2
	allocSlack  = 4096
)

func TestDecodeAllocationBounded(t *testing.T) {
	decode := func(b []byte) { _, _ = ParseRequest(b) }
	for _, v := range pchcVectors(t) {
		if v.isResponse() {
			bounded(t, v.Name, v.Data, 0, func(b []byte) { _, _ = ParseResponse(b) })
			continue
		}
		bounded(t, v.Name, v.Data, allocFactor, decode)
	}
	minimal := rawDescriptor(1, []byte{'x'}, HashSHA256)
	bounded(t, "128 one-byte-tag descriptors", append(rawPrefix(2, TypeBatchedOffer), bytes.Repeat(minimal, 128)...), allocFactor, decode)
	// Rejected inputs cost only the error, however large they are or
	// whatever size their fields claim.
	bounded(t, "129 descriptors", append(rawPrefix(2, TypeBatchedOffer), bytes.Repeat(minimal, 129)...), 0, decode)
	bounded(t, "tag size claiming 64 KiB", rawBatch(2, rawDescriptor(0xffff, nil, HashSHA256)), 0, decode)
	bounded(t, "body over MaxMessageSize", make([]byte, 4*MaxMessageSize), 0, decode)
}

func bounded(t *testing.T, name string, input []byte, factor uint64, decode func([]byte)) {
	t.Helper()
	allocs.Bounded(t, name, input, factor, allocSlack, decode)
}
