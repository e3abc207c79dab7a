package pchc

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

// rawPrefix builds MESSAGE_HEADER + CONNECTION_INFORMATION by hand, so tests
// can express bodies the encoder refuses to write.
func rawPrefix(major uint8, typ MessageType) []byte {
	b := []byte{0, major, 0, 0, 0, 0, 0, 0, 0x1f, 0x90, 0, 0, 0, 0, 0, 0}
	binary.BigEndian.PutUint16(b[2:4], uint16(typ))
	return b
}

// rawDescriptor builds one SegmentDescriptor with a declared tag size that
// may disagree with the tag bytes actually written.
func rawDescriptor(declaredTagSize uint16, tag []byte, algo uint8) []byte {
	b := binary.BigEndian.AppendUint32(nil, 65536)
	b = binary.BigEndian.AppendUint32(b, 100000)
	b = binary.BigEndian.AppendUint16(b, declaredTagSize)
	b = append(b, tag...)
	b = append(b, algo)
	return append(b, bytes.Repeat([]byte{0xab}, HoHoDkSize)...)
}

func rawBatch(major uint8, descriptors ...[]byte) []byte {
	return append(rawPrefix(major, TypeBatchedOffer), bytes.Join(descriptors, nil)...)
}

func repeatDescriptor(n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = rawDescriptor(16, []byte("WinINet\x00\x00\x00\x00\x00\x00\x00\x00\x00"), HashSHA256)
	}
	return out
}

// The suite expects batches with 0 or 129 descriptors or an empty tag to
// be dropped, but an unknown hash algorithm to get ResponseOK and no pull
// (BatchedOffer_HashAlgoInvalid), so that case carries its own sentinel.
func TestInvalidBatchesDropped(t *testing.T) {
	good := rawDescriptor(16, make([]byte, 16), HashTruncatedSHA512)
	tests := []struct {
		name        string
		body        []byte
		unknownAlgo bool
	}{
		{"zero descriptors", rawBatch(2), false},
		{"129 descriptors", rawBatch(2, repeatDescriptor(129)...), false},
		{"hash algorithm 0x02", rawBatch(2, rawDescriptor(16, make([]byte, 16), 0x02)), true},
		{"hash algorithm 0x00", rawBatch(2, rawDescriptor(16, make([]byte, 16), 0x00)), true},
		{"hash algorithm 0xfe (the suite's)", rawBatch(2, rawDescriptor(16, make([]byte, 16), 0xfe)), true},
		{"unknown algorithm in second descriptor", rawBatch(2, good, rawDescriptor(16, make([]byte, 16), 0x03)), true},
		{"empty content tag", rawBatch(2, rawDescriptor(0, nil, HashSHA256)), false},
		{"content tag overruns body", rawBatch(2, rawDescriptor(0xffff, make([]byte, 16), HashSHA256)), false},
		{"content tag size larger than tag", rawBatch(2, rawDescriptor(17, make([]byte, 16), HashSHA256)), false},
		{"truncated HoHoDk", rawBatch(2, good[:len(good)-1]), false},
		{"trailing garbage", append(rawBatch(2, good), 0x00), false},
		{"major version 1", rawBatch(1, good), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := ParseRequest(tt.body)
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("ParseRequest = %+v, %v; want ErrMalformed", m, err)
			}
			if got := errors.Is(err, ErrUnknownHashAlgorithm); got != tt.unknownAlgo {
				t.Errorf("errors.Is(%v, ErrUnknownHashAlgorithm) = %v, want %v", err, got, tt.unknownAlgo)
			}
		})
	}
	// The limits themselves are valid.
	for _, n := range []int{MinBatchedSegments, MaxBatchedSegments} {
		m := mustParse[BatchedOffer](t, rawBatch(2, repeatDescriptor(n)...))
		if len(m.Segments) != n {
			t.Errorf("%d descriptors decoded as %d", n, len(m.Segments))
		}
	}
}

func TestEncoderRefusesWhatDecoderRejects(t *testing.T) {
	segment := SegmentDescriptor{ContentTag: []byte{1}, HashAlgorithm: HashSHA256}
	withAlgo := segment
	withAlgo.HashAlgorithm = 0x02
	noTag := segment
	noTag.ContentTag = nil
	hugeTag := segment
	hugeTag.ContentTag = make([]byte, 1<<16)
	tests := []struct {
		name string
		msg  interface{ Marshal() ([]byte, error) }
	}{
		{"batch without descriptors", BatchedOffer{}},
		{"batch of 129", BatchedOffer{Segments: make([]SegmentDescriptor, 129)}},
		{"unknown hash algorithm", BatchedOffer{Segments: []SegmentDescriptor{withAlgo}}},
		{"empty content tag", BatchedOffer{Segments: []SegmentDescriptor{noTag}}},
		{"content tag over 65535 bytes", BatchedOffer{Segments: []SegmentDescriptor{hugeTag}}},
		{"batch over MaxMessageSize", BatchedOffer{Segments: []SegmentDescriptor{{ContentTag: make([]byte, MaxMessageSize), HashAlgorithm: HashSHA256}}}},
		{"initial offer major 0", InitialOffer{Major: 0, HoHoDk: make([]byte, 32)}},
		{"initial offer major 3", InitialOffer{Major: 3, HoHoDk: make([]byte, 32)}},
		{"initial offer empty hash", InitialOffer{Major: 1}},
		{"initial offer 31-byte hash", InitialOffer{Major: 1, HoHoDk: make([]byte, 31)}},
		{"segment info short information", SegmentInfo{Major: 1, SegmentInformation: make([]byte, 17)}},
		{"segment info over MaxMessageSize", SegmentInfo{Major: 1, SegmentInformation: make([]byte, MaxMessageSize)}},
		{"segment info major 0", SegmentInfo{SegmentInformation: make([]byte, 18)}},
		{"response code 2", Response{Code: 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if b, err := tt.msg.Marshal(); !errors.Is(err, ErrMalformed) {
				t.Errorf("Marshal = %x, %v; want ErrMalformed", b, err)
			}
		})
	}
}

func TestMalformedRequests(t *testing.T) {
	info := append(make([]byte, ContentTagSize), make([]byte, MinSegmentInformationSize)...)
	tests := []struct {
		name string
		body []byte
	}{
		{"empty", nil},
		{"header only", rawPrefix(1, TypeInitialOffer)[:8]},
		{"minor version 1", append([]byte{1}, append(rawPrefix(1, TypeInitialOffer), make([]byte, 32)...)[1:]...)},
		{"major version 0", append(rawPrefix(0, TypeInitialOffer), make([]byte, 32)...)},
		{"major version 3", append(rawPrefix(3, TypeInitialOffer), make([]byte, 32)...)},
		{"unknown type 0", append(rawPrefix(1, 0), make([]byte, 32)...)},
		{"unknown type 4", append(rawPrefix(2, 4), make([]byte, 32)...)},
		{"type in little-endian", append(rawPrefix(1, 0x0100), make([]byte, 32)...)},
		{"initial offer without hash", rawPrefix(1, TypeInitialOffer)},
		{"initial offer 33-byte hash", append(rawPrefix(1, TypeInitialOffer), make([]byte, 33)...)},
		{"segment info 17-byte information", append(rawPrefix(1, TypeSegmentInfo), info[:len(info)-1]...)},
		{"over MaxMessageSize", append(rawPrefix(1, TypeSegmentInfo), make([]byte, MaxMessageSize)...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if m, err := ParseRequest(tt.body); !errors.Is(err, ErrMalformed) {
				t.Errorf("ParseRequest = %+v, %v; want ErrMalformed", m, err)
			}
		})
	}
	// The boundaries themselves are valid.
	for _, body := range [][]byte{
		append(rawPrefix(1, TypeSegmentInfo), info...),
		append(rawPrefix(2, TypeSegmentInfo), make([]byte, MaxMessageSize-prefixSize)...),
		append(rawPrefix(1, TypeInitialOffer), make([]byte, 48)...),
		append(rawPrefix(2, TypeInitialOffer), make([]byte, 64)...),
	} {
		if _, err := ParseRequest(body); err != nil {
			t.Errorf("ParseRequest(%d bytes): %v", len(body), err)
		}
	}
}

func TestMalformedResponses(t *testing.T) {
	for _, body := range [][]byte{
		nil,
		{0, 0, 0, 1},
		{0, 0, 0, 1, 0, 0},
		{0, 0, 0, 2, 0},
		{0, 0, 0, 0, 0},
		{0, 0, 0, 1, 2},
		{0, 0, 0, 1, 0xff},
	} {
		if r, err := ParseResponse(body); !errors.Is(err, ErrMalformed) {
			t.Errorf("ParseResponse(%x) = %v, %v; want ErrMalformed", body, r, err)
		}
	}
}

// Cutting any vector short must fail cleanly, except where the format itself
// makes the shorter body valid: SEGMENT_INFO's SegmentInformation is "the
// rest of the body" and is not parsed here (§9 row 18), and a BATCHED_OFFER
// cut at a descriptor boundary is a smaller batch. Those shorter bodies must
// then decode to exactly what they contain.
func TestTruncationAtEveryByte(t *testing.T) {
	for _, v := range pchcVectors(t) {
		for n := range len(v.Data) {
			short := v.Data[:n]
			if v.isResponse() {
				if _, err := ParseResponse(short); !errors.Is(err, ErrMalformed) {
					t.Errorf("%s cut to %d bytes: err %v, want ErrMalformed", v.Name, n, err)
				}
				continue
			}
			m, err := ParseRequest(short)
			if err != nil {
				if !errors.Is(err, ErrMalformed) {
					t.Errorf("%s cut to %d bytes: err %v does not wrap ErrMalformed", v.Name, n, err)
				}
				continue
			}
			if !legitimateTruncation(m, v.Data) {
				t.Errorf("%s cut to %d bytes decoded as %T without error", v.Name, n, m)
			}
			if encoded, err := m.Marshal(); err != nil || !bytes.Equal(encoded, short) {
				t.Errorf("%s cut to %d bytes re-encoded as %x, %v", v.Name, n, encoded, err)
			}
		}
	}
}

// legitimateTruncation reports whether decoding a prefix of full as m is
// the format's own doing rather than a missed length check.
func legitimateTruncation(m Message, full []byte) bool {
	switch m := m.(type) {
	case SegmentInfo:
		return true
	case BatchedOffer:
		whole, err := ParseRequest(full)
		if err != nil {
			return false
		}
		return len(m.Segments) < len(whole.(BatchedOffer).Segments)
	}
	return false
}

func TestErrorsCarryContext(t *testing.T) {
	_, err := ParseRequest(rawBatch(2, rawDescriptor(16, make([]byte, 16), 0x02)))
	const want = "pchc: batched offer: descriptor 0: unknown hash algorithm 0x02: malformed PCHC message"
	if err == nil || err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
}
