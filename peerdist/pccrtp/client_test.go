package pccrtp

import (
	"errors"
	"net/http"
	"reflect"
	"testing"
)

// The exact request headers iPXE sends for content information
// (protocols.md §10, last bullet).
func TestIPXERequestHeaders(t *testing.T) {
	h := http.Header{"Accept-Encoding": {"gzip"}}
	IPXERequest().SetHeaders(h)
	want := http.Header{
		"Accept-Encoding":                         {"peerdist"},
		http.CanonicalHeaderKey(HeaderPeerDist):   {"Version=1.1"},
		http.CanonicalHeaderKey(HeaderPeerDistEx): {"MinContentInformation=1.0, MaxContentInformation=2.0"},
	}
	if !reflect.DeepEqual(h, want) {
		t.Errorf("headers %v, want %v", h, want)
	}
}

func TestClientRequestSetHeaders(t *testing.T) {
	tests := []struct {
		name   string
		req    ClientRequest
		wantPD string
		wantEx string
	}{
		{"Vista/7", ClientRequest{Version: Version{1, 0}}, "Version=1.0", ""},
		{"Windows 8 V2 only", ClientRequest{Version: Version{1, 1}, MinContentInformation: Version{2, 0}, MaxContentInformation: Version{2, 0}},
			"Version=1.1", "MinContentInformation=2.0, MaxContentInformation=2.0"},
		{"asking again", ClientRequest{Version: Version{1, 1}, MinContentInformation: Version{1, 0}, MaxContentInformation: Version{2, 0}, HashRequest: true},
			"Version=1.1", "MinContentInformation=1.0, MaxContentInformation=2.0, HashRequest=true"},
	}
	for _, tt := range tests {
		h := http.Header{HeaderPeerDistEx: {"stale"}}
		tt.req.SetHeaders(h)
		if got := h.Get(HeaderPeerDist); got != tt.wantPD {
			t.Errorf("%s: X-P2P-PeerDist %q, want %q", tt.name, got, tt.wantPD)
		}
		if got := h.Get(HeaderPeerDistEx); got != tt.wantEx {
			t.Errorf("%s: X-P2P-PeerDistEx %q, want %q", tt.name, got, tt.wantEx)
		}
	}
}

// iPXE's origin fallback: a Range GET with MissingDataRequest and without
// peerdist in Accept-Encoding.
func TestSetMissingDataRequest(t *testing.T) {
	h := http.Header{}
	IPXERequest().SetHeaders(h)
	h.Set("Range", "bytes=0-65535")
	SetMissingDataRequest(h, Version{1, 1})
	want := http.Header{
		"Range":                                 {"bytes=0-65535"},
		http.CanonicalHeaderKey(HeaderPeerDist): {"Version=1.1, MissingDataRequest=true"},
	}
	if !reflect.DeepEqual(h, want) {
		t.Errorf("headers %v, want %v", h, want)
	}
	if n := Negotiate(h); n.UsePeerDist {
		t.Errorf("server would answer a missing-data request with peerdist: %+v", n)
	}
}

func TestParseResponseHeaders(t *testing.T) {
	tests := []struct {
		name    string
		h       http.Header
		want    ServerResponse
		wantErr bool
	}{
		{"IIS peerdist answer to 1.0", header("Content-Encoding", "peerdist", HeaderPeerDist, "Version=1.0, ContentLength=99710"),
			ServerResponse{PeerDist: true, Version: Version{1, 0}, ContentLength: 99710}, false},
		{"peerdist answer to 1.1", header("Content-Encoding", "PeerDist", HeaderPeerDist, "Version=1.1, ContentLength=0"),
			ServerResponse{PeerDist: true, Version: Version{1, 1}}, false},
		{"hashes not ready", header(HeaderPeerDistEx, "MakeHashRequest=true"),
			ServerResponse{MakeHashRequest: true}, false},
		{"plain answer", header("Content-Encoding", "gzip"), ServerResponse{}, false},
		{"plain answer, malformed hints ignored", header(HeaderPeerDist, "garbage", HeaderPeerDistEx, "MakeHashRequest=maybe"),
			ServerResponse{}, false},
		{"peerdist without X-P2P-PeerDist", header("Content-Encoding", "peerdist"), ServerResponse{}, true},
		{"peerdist without ContentLength", header("Content-Encoding", "peerdist", HeaderPeerDist, "Version=1.1"), ServerResponse{}, true},
		{"peerdist with bad ContentLength", header("Content-Encoding", "peerdist", HeaderPeerDist, "Version=1.1, ContentLength=-5"), ServerResponse{}, true},
		{"peerdist stacked on gzip", header("Content-Encoding", "gzip, peerdist", HeaderPeerDist, "Version=1.1, ContentLength=5"), ServerResponse{}, true},
	}
	for _, tt := range tests {
		got, err := ParseResponseHeaders(tt.h)
		if tt.wantErr {
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("%s: %+v, %v; want ErrMalformed", tt.name, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%s: %+v, %v; want %+v", tt.name, got, err, tt.want)
		}
	}
}

// A server's answer, produced by this package, is read back by its client.
func TestServerAnswerReadByClient(t *testing.T) {
	req := http.Header{}
	IPXERequest().SetHeaders(req)
	resp := http.Header{}
	Negotiate(req).SetResponseHeaders(resp, 123456)
	got, err := ParseResponseHeaders(resp)
	want := ServerResponse{PeerDist: true, Version: Version{1, 1}, ContentLength: 123456}
	if err != nil || got != want {
		t.Errorf("client read %+v, %v; want %+v", got, err, want)
	}
}
