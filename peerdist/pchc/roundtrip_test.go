package pchc

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"reflect"
	"testing"
)

func randomBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func randomMajor(r *rand.Rand) uint8 { return MajorV1 + uint8(r.IntN(2)) }

// randomMessage returns a valid message of a random type.
func randomMessage(r *rand.Rand) Message {
	switch r.IntN(3) {
	case 0:
		return InitialOffer{
			Major: randomMajor(r), Port: uint16(r.Uint32()),
			HoHoDk: randomBytes(r, []int{32, 48, 64}[r.IntN(3)]),
		}
	case 1:
		m := SegmentInfo{
			Major: randomMajor(r), Port: uint16(r.Uint32()),
			SegmentInformation: randomBytes(r, MinSegmentInformationSize+r.IntN(2000)),
		}
		copy(m.ContentTag[:], randomBytes(r, ContentTagSize))
		return m
	default:
		m := BatchedOffer{Port: uint16(r.Uint32())}
		for range 1 + r.IntN(MaxBatchedSegments) {
			d := SegmentDescriptor{
				BlockSize: r.Uint32(), SegmentSize: r.Uint32(),
				ContentTag:    randomBytes(r, 1+r.IntN(40)),
				HashAlgorithm: []uint8{HashSHA256, HashTruncatedSHA512}[r.IntN(2)],
			}
			copy(d.HoHoDk[:], randomBytes(r, HoHoDkSize))
			m.Segments = append(m.Segments, d)
		}
		return m
	}
}

func TestRoundTripRandomMessages(t *testing.T) {
	r := rand.New(rand.NewPCG(14, 2026))
	for i := range 2000 {
		m := randomMessage(r)
		encoded, err := m.Marshal()
		if err != nil {
			t.Fatalf("#%d Marshal(%T): %v", i, m, err)
		}
		got, err := ParseRequest(encoded)
		if err != nil {
			t.Fatalf("#%d ParseRequest: %v", i, err)
		}
		if !reflect.DeepEqual(got, m) {
			t.Fatalf("#%d round trip\n %+v\nwant\n %+v", i, got, m)
		}
		// AppendTo keeps what is already in dst.
		appended, err := m.AppendTo([]byte("keep"))
		if err != nil || !bytes.Equal(appended, append([]byte("keep"), encoded...)) {
			t.Fatalf("#%d AppendTo did not append: %v", i, err)
		}
	}
}

// Random corruption of valid messages never panics, and whatever still
// decodes re-encodes to the same bytes with the padding fields zeroed.
func TestRandomCorruption(t *testing.T) {
	r := rand.New(rand.NewPCG(18, 2026))
	for i := range 5000 {
		encoded, err := randomMessage(r).Marshal()
		if err != nil {
			t.Fatal(err)
		}
		for range 1 + r.IntN(4) {
			encoded[r.IntN(len(encoded))] = byte(r.Uint32())
		}
		m, err := ParseRequest(encoded)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("#%d error %v does not wrap ErrMalformed", i, err)
			}
			continue
		}
		again, err := m.Marshal()
		if err != nil || !bytes.Equal(again, zeroPadding(encoded)) {
			t.Fatalf("#%d re-encoded %x, %v; want %x", i, again, err, zeroPadding(encoded))
		}
	}
}

func TestRoundTripResponses(t *testing.T) {
	for _, code := range []ResponseCode{ResponseOK, ResponseInterested} {
		encoded, err := Response{Code: code}.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParseResponse(encoded)
		if err != nil || got.Code != code {
			t.Errorf("ParseResponse(%x) = %v, %v; want %v", encoded, got, err, code)
		}
	}
}

// zeroPadding returns body with the ignored header and connection padding
// cleared, which is what the encoder writes there.
func zeroPadding(body []byte) []byte {
	out := bytes.Clone(body)
	if len(out) >= prefixSize {
		clear(out[4:8])
		clear(out[10:16])
	}
	return out
}
