package pchc

import (
	"encoding/hex"
	"errors"
	"testing"

	"github.com/outpost-appliance/outpost/peerdist/vectors"
)

// The content information inside SEGMENT_INFO parses, and yields the
// offered segment's ID, both as we encode it and as the MS test suite does.
func TestSegmentInfoContentInfo(t *testing.T) {
	for _, tc := range []struct {
		name, id string
		data     []byte
	}{
		{"peerdist-vectors", "491b217dbee2b5f12ca79b015e06f4bbe64f9745bad7867aef17de59927edce9",
			vectors.Read(t, "peerdist-vectors", "derived", "pchc_segment_info_v1_port80.bin")},
		{"suite spec", "74961fc6056fe9a4ccb98ba8c43833b908a78cb766e5e177bbd8c5fb9b25feb7",
			vectors.Lookup(t, vectors.GoldenTable(t, "mstest-vectors", "derived", "golden_messages.txt"), "pchc_segment_info_v1_spec")},
		{"suite as sent", "74961fc6056fe9a4ccb98ba8c43833b908a78cb766e5e177bbd8c5fb9b25feb7",
			vectors.Lookup(t, vectors.GoldenTable(t, "mstest-vectors", "derived", "golden_messages.txt"), "pchc_segment_info_v1_as_suite_sends")},
	} {
		msg, err := ParseRequest(tc.data)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		ci, err := msg.(SegmentInfo).ContentInfo()
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if len(ci.Segments) != 1 || hex.EncodeToString(ci.ID(0)) != tc.id {
			t.Errorf("%s: %d segments, ID %x", tc.name, len(ci.Segments), ci.ID(0))
		}
		if err := ci.Segments[0].CheckHashOfData(ci.Algo); err != nil {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	bad := SegmentInfo{SegmentInformation: vectors.Read(t, "peerdist-vectors", "ipxe", "iis85_ci_v2.bin")}
	if _, err := bad.ContentInfo(); !errors.Is(err, ErrMalformed) {
		t.Errorf("V2 content information inside SEGMENT_INFO: %v", err)
	}
}
