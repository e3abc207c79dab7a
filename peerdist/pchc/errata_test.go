package pchc

import (
	"bytes"
	"encoding/binary"
	"reflect"
	"testing"
)

// §9 row 12: BlockSize and SegmentSize are 4 bytes, not the 2012 preview's 2.
func TestSpecErrata12_FourByteBlockAndSegmentSize(t *testing.T) {
	// The suite's batch carries 0x13c00, which does not fit in 2 bytes.
	batch := mustParse[BatchedOffer](t, requestVector(t, "mstest/pchc_batched_offer_v2"))
	if d := batch.Segments[0]; d.BlockSize != 0x13c00 || d.SegmentSize != 0x13c00 {
		t.Errorf("sizes %#x/%#x, want 0x13c00", d.BlockSize, d.SegmentSize)
	}
	// A full 32 MiB V1 segment round-trips.
	offer := BatchedOffer{Port: 80, Segments: []SegmentDescriptor{{
		BlockSize: 64 << 10, SegmentSize: 32 << 20, ContentTag: []byte("WinINet"), HashAlgorithm: HashSHA256,
	}}}
	encoded, err := offer.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if got := encoded[prefixSize : prefixSize+8]; !bytes.Equal(got, []byte{0, 1, 0, 0, 0x02, 0, 0, 0}) {
		t.Errorf("size fields %x, want 00010000 02000000", got)
	}
	if got := mustParse[BatchedOffer](t, encoded); !reflect.DeepEqual(got, offer) {
		t.Errorf("round trip %+v, want %+v", got, offer)
	}
}

// §9 row 13: the v1 path is HTTPS and the v2 path HTTP, but both paths are
// matched for any transport and either spelling.
func TestSpecErrata13_BothPathsMatched(t *testing.T) {
	tests := []struct {
		path      string
		wantMajor uint8
		wantOK    bool
	}{
		{PathV1, 1, true},
		{PathV2, 2, true},
		{"/C574AC30-5794-4AEE-B1BB-6651C5315029", 1, true},
		{"/c574ac30-5794-4aee-b1bb-6651c5315029/", 1, true},
		{"/0131501B-D67F-491B-9A40-C4BF27BCB4D4/", 2, true},
		{"/0131501b-d67f-491b-9a40-c4bf27bcb4d4", 2, true},
		{"/116B50EB-ECE2-41ac-8429-9F9E963361B7/", 0, false}, // PCCRR, not PCHC
		{"/C574AC30-5794-4AEE-B1BB-6651C5315029//", 0, false},
		{"/C574AC30-5794-4AEE-B1BB-6651C5315029/x", 0, false},
		{"C574AC30-5794-4AEE-B1BB-6651C5315029/", 0, false},
		{"/", 0, false},
		{"", 0, false},
	}
	for _, tt := range tests {
		major, ok := MatchPath(tt.path)
		if major != tt.wantMajor || ok != tt.wantOK {
			t.Errorf("MatchPath(%q) = %d, %v; want %d, %v", tt.path, major, ok, tt.wantMajor, tt.wantOK)
		}
	}
}

// §9 row 14: every PCHC integer is big-endian, in requests and responses.
func TestSpecErrata14_BigEndian(t *testing.T) {
	body := requestVector(t, "mstest/pchc_batched_offer_v2")
	if got := body[2:4]; !bytes.Equal(got, []byte{0x00, 0x03}) {
		t.Errorf("Type bytes %x, want 0003", got)
	}
	if got := body[8:10]; !bytes.Equal(got, []byte{0x20, 0x5a}) {
		t.Errorf("Port bytes %x, want 205a (8282)", got)
	}
	if got := body[prefixSize+8 : prefixSize+10]; !bytes.Equal(got, []byte{0x00, 0x10}) {
		t.Errorf("SizeOfContentTag bytes %x, want 0010", got)
	}
	if m := mustParse[BatchedOffer](t, body); m.Port != 8282 {
		t.Errorf("port %d, want 8282", m.Port)
	}
	resp, err := Response{Code: ResponseInterested}.Marshal()
	if err != nil || !bytes.Equal(resp, []byte{0, 0, 0, 1, 1}) {
		t.Errorf("response %x, %v; want 0000000101", resp, err)
	}
	// A little-endian Size (01000000) is not a valid response.
	if _, err := ParseResponse([]byte{1, 0, 0, 0, 0}); err == nil {
		t.Error("ParseResponse accepted a little-endian size")
	}
}

// §9 row 15: SEGMENT_INFO is accepted with either major version (the suite's
// V2 scenario sends it after a BATCHED_OFFER).
func TestSpecErrata15_SegmentInfoAnyMajor(t *testing.T) {
	v1 := requestVector(t, "mstest/pchc_segment_info_v1_spec")
	for _, major := range []uint8{MajorV1, MajorV2} {
		body := bytes.Clone(v1)
		body[1] = major
		m := mustParse[SegmentInfo](t, body)
		if m.Major != major {
			t.Errorf("major %d decoded as %d", major, m.Major)
		}
		encoded, err := m.Marshal()
		if err != nil || !bytes.Equal(encoded, body) {
			t.Errorf("major %d: re-encoded %x, %v", major, encoded, err)
		}
	}
}

// §9 row 18: the suite's SEGMENT_INFO repeats dwOffsetInFirstSegment where
// dwReadBytesInLastSegment belongs. Only the framing is checked here, so it
// is accepted and re-encoded byte for byte.
func TestSpecErrata18_SuiteSegmentInfoTolerated(t *testing.T) {
	body := requestVector(t, "mstest/pchc_segment_info_v1_as_suite_sends")
	m := mustParse[SegmentInfo](t, body)
	info := m.SegmentInformation
	if got := binary.LittleEndian.Uint32(info[10:14]); got != 0 {
		t.Errorf("dwReadBytesInLastSegment %d, want the suite's 0", got)
	}
	spec := mustParse[SegmentInfo](t, requestVector(t, "mstest/pchc_segment_info_v1_spec"))
	if got := binary.LittleEndian.Uint32(spec.SegmentInformation[10:14]); got != 0x13c00 {
		t.Errorf("spec vector dwReadBytesInLastSegment %#x, want 0x13c00", got)
	}
	encoded, err := m.Marshal()
	if err != nil || !bytes.Equal(encoded, body) {
		t.Errorf("re-encoded %x, %v; want %x", encoded, err, body)
	}
}
