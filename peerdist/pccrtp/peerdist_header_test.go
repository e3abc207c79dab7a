package pccrtp

import (
	"errors"
	"testing"
)

func TestParsePeerDist(t *testing.T) {
	tests := []struct {
		in      string
		want    PeerDist
		wantErr bool
	}{
		// protocols.md §6 examples.
		{in: "Version=1.0", want: PeerDist{Version: Version{1, 0}}},
		{in: "Version=1.1", want: PeerDist{Version: Version{1, 1}}},
		{in: "Version=1.1, ContentLength=123", want: PeerDist{Version: Version{1, 1}, ContentLength: 123, HasContentLength: true}},
		{in: "Version=1.1, MissingDataRequest=true", want: PeerDist{Version: Version{1, 1}, MissingDataRequest: true}},
		{in: "Version=1.1, ContentLength=123, MissingDataRequest=true",
			want: PeerDist{Version: Version{1, 1}, ContentLength: 123, HasContentLength: true, MissingDataRequest: true}},
		// Spacing, order, case, empty elements, unknown keys.
		{in: "Version=1.0,ContentLength=99710", want: PeerDist{Version: Version{1, 0}, ContentLength: 99710, HasContentLength: true}},
		{in: "ContentLength=0,   Version=1.0", want: PeerDist{Version: Version{1, 0}, HasContentLength: true}},
		{in: " Version = 1.1 ,\tMissingDataRequest=TRUE ", want: PeerDist{Version: Version{1, 1}, MissingDataRequest: true}},
		{in: "version=1.1, contentlength=7", want: PeerDist{Version: Version{1, 1}, ContentLength: 7, HasContentLength: true}},
		{in: "Version=1.1,, ,", want: PeerDist{Version: Version{1, 1}}},
		{in: "Version=1.1, Future=yes, Flag", want: PeerDist{Version: Version{1, 1}}},
		{in: "Version=1.1, MissingDataRequest=false", want: PeerDist{Version: Version{1, 1}}},
		{in: "Version=1.23", want: PeerDist{Version: Version{1, 23}}},
		{in: "Version=1.1, ContentLength=9223372036854775807", want: PeerDist{Version: Version{1, 1}, ContentLength: 1<<63 - 1, HasContentLength: true}},
		// Garbage.
		{in: "", wantErr: true},
		{in: "ContentLength=5", wantErr: true},
		{in: "Version", wantErr: true},
		{in: "Version=", wantErr: true},
		{in: "Version=1 .1", wantErr: true},
		{in: "Version=1.1;ContentLength=5", wantErr: true},
		{in: "Version=1.1, Version=1.0", wantErr: true},
		{in: "=1.1", wantErr: true},
		{in: "Version=1.1, ContentLength=-1", wantErr: true},
		{in: "Version=1.1, ContentLength=+1", wantErr: true},
		{in: "Version=1.1, ContentLength=1 2", wantErr: true},
		{in: "Version=1.1, ContentLength=", wantErr: true},
		{in: "Version=1.1, ContentLength=9223372036854775808", wantErr: true},
		{in: "Version=1.1, MissingDataRequest=yes", wantErr: true},
		{in: "Version=1.1, MissingDataRequest", wantErr: true},
		{in: "Version=1.1, MissingDataRequest=true, MissingDataRequest=true", wantErr: true},
	}
	for _, tt := range tests {
		got, err := ParsePeerDist(tt.in)
		if tt.wantErr {
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("ParsePeerDist(%q) = %+v, %v; want ErrMalformed", tt.in, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParsePeerDist(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
}

func TestFormatPeerDist(t *testing.T) {
	tests := []struct {
		in   PeerDist
		want string
	}{
		{PeerDist{Version: Version{1, 0}}, "Version=1.0"},
		{PeerDist{Version: Version{1, 1}, ContentLength: 99710, HasContentLength: true}, "Version=1.1, ContentLength=99710"},
		{PeerDist{Version: Version{1, 0}, HasContentLength: true}, "Version=1.0, ContentLength=0"},
		{PeerDist{Version: Version{1, 1}, MissingDataRequest: true}, "Version=1.1, MissingDataRequest=true"},
		{PeerDist{Version: Version{1, 1}, ContentLength: 5, HasContentLength: true, MissingDataRequest: true},
			"Version=1.1, ContentLength=5, MissingDataRequest=true"},
	}
	for _, tt := range tests {
		if got := tt.in.String(); got != tt.want {
			t.Errorf("%+v.String() = %q, want %q", tt.in, got, tt.want)
		}
		if back, err := ParsePeerDist(tt.want); err != nil || back != tt.in {
			t.Errorf("ParsePeerDist(%q) = %+v, %v; want %+v", tt.want, back, err, tt.in)
		}
	}
}

func TestParsePeerDistEx(t *testing.T) {
	tests := []struct {
		in      string
		want    PeerDistEx
		wantErr bool
	}{
		{in: "MinContentInformation=1.0, MaxContentInformation=2.0",
			want: PeerDistEx{MinContentInformation: Version{1, 0}, MaxContentInformation: Version{2, 0}}},
		{in: "MinContentInformation=1.0, MaxContentInformation=1.0",
			want: PeerDistEx{MinContentInformation: Version{1, 0}, MaxContentInformation: Version{1, 0}}},
		{in: "MinContentInformation=2.0, MaxContentInformation=2.0, HashRequest=true",
			want: PeerDistEx{MinContentInformation: Version{2, 0}, MaxContentInformation: Version{2, 0}, HashRequest: true}},
		{in: "MakeHashRequest=true", want: PeerDistEx{MakeHashRequest: true}},
		{in: "maxcontentinformation=2.0,mincontentinformation=1.0",
			want: PeerDistEx{MinContentInformation: Version{1, 0}, MaxContentInformation: Version{2, 0}}},
		{in: "MinContentInformation=1.0, Other=1", want: PeerDistEx{MinContentInformation: Version{1, 0}}},
		{in: "", want: PeerDistEx{}},
		{in: "MinContentInformation=1", wantErr: true},
		{in: "MinContentInformation=1.0, MinContentInformation=1.0", wantErr: true},
		{in: "MaxContentInformation=2. 0", wantErr: true},
		{in: "MakeHashRequest=1", wantErr: true},
		{in: "HashRequest=", wantErr: true},
		{in: "=true", wantErr: true},
	}
	for _, tt := range tests {
		got, err := ParsePeerDistEx(tt.in)
		if tt.wantErr {
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("ParsePeerDistEx(%q) = %+v, %v; want ErrMalformed", tt.in, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParsePeerDistEx(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
}

func TestFormatPeerDistEx(t *testing.T) {
	tests := []struct {
		in   PeerDistEx
		want string
	}{
		{PeerDistEx{}, ""},
		{PeerDistEx{MinContentInformation: Version{1, 0}, MaxContentInformation: Version{2, 0}},
			"MinContentInformation=1.0, MaxContentInformation=2.0"},
		{PeerDistEx{MakeHashRequest: true}, "MakeHashRequest=true"},
		{PeerDistEx{MinContentInformation: Version{1, 0}, MaxContentInformation: Version{2, 0}, HashRequest: true},
			"MinContentInformation=1.0, MaxContentInformation=2.0, HashRequest=true"},
	}
	for _, tt := range tests {
		if got := tt.in.String(); got != tt.want {
			t.Errorf("%+v.String() = %q, want %q", tt.in, got, tt.want)
		}
		if back, err := ParsePeerDistEx(tt.want); err != nil || back != tt.in {
			t.Errorf("ParsePeerDistEx(%q) = %+v, %v; want %+v", tt.want, back, err, tt.in)
		}
	}
}

func TestParseErrorsCarryContext(t *testing.T) {
	_, err := ParsePeerDist("Version=1.1, ContentLength=x")
	const want = `pccrtp: X-P2P-PeerDist: ContentLength="x" is not a decimal number: malformed PeerDist header`
	if err == nil || err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
}
