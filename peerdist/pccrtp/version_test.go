package pccrtp

import (
	"errors"
	"testing"
)

func TestParseVersion(t *testing.T) {
	tests := []struct {
		in      string
		want    Version
		wantErr bool
	}{
		{in: "1.0", want: Version{1, 0}},
		{in: "1.1", want: Version{1, 1}},
		{in: "2.0", want: Version{2, 0}},
		{in: "1.23", want: Version{1, 23}},
		{in: "1.05", want: Version{1, 5}},
		{in: "0.0", want: Version{0, 0}},
		{in: "999999999.999999999", want: Version{999999999, 999999999}},
		{in: "", wantErr: true},
		{in: "1", wantErr: true},
		{in: "1.", wantErr: true},
		{in: ".1", wantErr: true},
		{in: " 1.0", wantErr: true},
		{in: "1.0 ", wantErr: true},
		{in: "1 .0", wantErr: true},
		{in: "1. 0", wantErr: true},
		{in: "+1.0", wantErr: true},
		{in: "1.-0", wantErr: true},
		{in: "1.0.0", wantErr: true},
		{in: "1,0", wantErr: true},
		{in: "a.b", wantErr: true},
		{in: "１.0", wantErr: true}, // full-width digit
		{in: "1234567890.0", wantErr: true},
		{in: "\"1.0\"", wantErr: true},
	}
	for _, tt := range tests {
		got, err := ParseVersion(tt.in)
		if tt.wantErr {
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("ParseVersion(%q) = %v, %v; want ErrMalformed", tt.in, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseVersion(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestVersionCompare(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"1.23", "1.3", +1}, // separate integers, not decimals
		{"1.3", "1.23", -1},
		{"1.10", "1.9", +1},
		{"2.0", "1.99", +1},
		{"1.0", "1.1", -1},
		{"1.05", "1.5", 0},
		{"1.1", "1.1", 0},
	}
	for _, tt := range tests {
		a, errA := ParseVersion(tt.a)
		b, errB := ParseVersion(tt.b)
		if errA != nil || errB != nil {
			t.Fatal(errA, errB)
		}
		if got := a.Compare(b); got != tt.want {
			t.Errorf("%s.Compare(%s) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestVersionString(t *testing.T) {
	for v, want := range map[Version]string{{1, 0}: "1.0", {1, 1}: "1.1", {2, 0}: "2.0", {1, 23}: "1.23"} {
		if got := v.String(); got != want {
			t.Errorf("%#v.String() = %q, want %q", v, got, want)
		}
	}
}
