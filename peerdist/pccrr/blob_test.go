package pccrr

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/outpost-appliance/outpost/peerdist/allocs"
)

// TestParseSegmentAges follows the validation order of protocols.md §3.4:
// size ≥ 2 and version 1, size ≥ 4, unit 1-4, size ≥ 4·(count+1). Every
// failure means "drop the blob".
func TestParseSegmentAges(t *testing.T) {
	tests := []struct {
		name    string
		blob    []byte
		want    *SegmentAges
		errText string
	}{
		{"empty", nil, nil, "blob of 0 bytes"},
		{"1 byte", []byte{0}, nil, "blob of 1 bytes"},
		{"version 2", []byte{0, 2, 3, 0}, nil, "version 2"},
		{"version 0x0100 (little-endian 1)", []byte{1, 0, 3, 0}, nil, "version 256"},
		{"version before size", []byte{0, 2}, nil, "version 2"},
		{"v1 of 2 bytes", []byte{0, 1}, nil, "v1 of 2 bytes"},
		{"v1 of 3 bytes", []byte{0, 1, 3}, nil, "v1 of 3 bytes"},
		{"unit 0", []byte{0, 1, 0, 0}, nil, "unit 0"},
		{"unit before count", []byte{0, 1, 5, 9}, nil, "unit 5"},
		{"count 1, no entry", []byte{0, 1, 3, 1}, nil, "need 8 bytes"},
		{"count 255, 8 bytes", []byte{0, 1, 3, 255, 0, 0, 0, 0}, nil, "need 1024 bytes"},
		{"no ages", []byte{0, 1, 4, 0}, &SegmentAges{Units: AgeMilliseconds}, ""},
		{"one age", []byte{0, 1, 1, 1, 7, 0x10, 0x27, 0}, &SegmentAges{Units: AgeSeconds, Ages: []SegmentAge{{7, 10000}}}, ""},
		{"max age", []byte{0, 1, 2, 1, 0, 0xff, 0xff, 0xff}, &SegmentAges{Units: AgeDeciseconds, Ages: []SegmentAge{{0, MaxAge}}}, ""},
		{"trailing bytes ignored", []byte{0, 1, 3, 0, 0xaa, 0xbb}, &SegmentAges{Units: AgeCentiseconds}, ""},
	}
	for _, tt := range tests {
		got, err := ParseSegmentAges(tt.blob)
		if tt.want != nil {
			if err != nil || !reflect.DeepEqual(got, *tt.want) {
				t.Errorf("%s: %+v, %v; want %+v", tt.name, got, err, *tt.want)
			}
			continue
		}
		if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tt.errText) {
			t.Errorf("%s: err %v, want ErrMalformed mentioning %q", tt.name, err, tt.errText)
		}
	}
}

func TestSegmentAgesEncodeRules(t *testing.T) {
	tests := []struct {
		name string
		a    SegmentAges
		ok   bool
	}{
		{"ok", SegmentAges{Units: AgeCentiseconds, Ages: []SegmentAge{{0, MaxAge}}}, true},
		{"255 ages", SegmentAges{Units: AgeSeconds, Ages: make([]SegmentAge, 255)}, true},
		{"256 ages", SegmentAges{Units: AgeSeconds, Ages: make([]SegmentAge, 256)}, false},
		{"unit 0", SegmentAges{}, false},
		{"age over 24 bits", SegmentAges{Units: AgeSeconds, Ages: []SegmentAge{{0, MaxAge + 1}}}, false},
	}
	for _, tt := range tests {
		b, err := tt.a.Marshal()
		if (err == nil) != tt.ok {
			t.Errorf("%s: err %v", tt.name, err)
			continue
		}
		if err != nil {
			if b != nil || !errors.Is(err, ErrMalformed) {
				t.Errorf("%s: %x, %v", tt.name, b, err)
			}
			continue
		}
		if len(b) != 4+4*len(tt.a.Ages) {
			t.Errorf("%s: %d bytes", tt.name, len(b))
		}
		back, err := ParseSegmentAges(b)
		if err != nil || back.Units != tt.a.Units || len(back.Ages) != len(tt.a.Ages) {
			t.Errorf("%s: round trip %+v, %v", tt.name, back, err)
		}
	}
}

// TestParseSegmentAgesAllocationBounded: a count byte claiming 255 ages in
// a 4-byte blob must fail before allocating them. The slack absorbs the
// error value and the measurement's own noise (a few KiB at times).
func TestParseSegmentAgesAllocationBounded(t *testing.T) {
	parse := func(b []byte) { _, _ = ParseSegmentAges(b) }
	allocs.Bounded(t, "blob count 255", []byte{0, 1, 3, 255}, 0, allocSlack, parse)
	full := make([]byte, 4+4*255)
	copy(full, []byte{0, 1, 3, 255})
	allocs.Bounded(t, "blob of 255 ages", full, 2, allocSlack, parse)
}
