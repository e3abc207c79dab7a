package pccrtp

import (
	"net/http"
	"testing"
)

// header builds an http.Header from name, value pairs (names canonicalised
// as net/http does for incoming requests).
func header(pairs ...string) http.Header {
	h := http.Header{}
	for i := 0; i < len(pairs); i += 2 {
		h.Add(pairs[i], pairs[i+1])
	}
	return h
}

func TestNegotiate(t *testing.T) {
	const (
		ae    = "Accept-Encoding"
		pd    = HeaderPeerDist
		pdEx  = HeaderPeerDistEx
		ex1_2 = "MinContentInformation=1.0, MaxContentInformation=2.0"
	)
	tests := []struct {
		name        string
		h           http.Header
		wantCI      int // 0 = plain
		wantVersion string
	}{
		{"Vista/7 client", header(ae, "gzip, deflate, peerdist", pd, "Version=1.0"), 1, "1.0"},
		{"Windows 8 client, Ex 1.0-2.0", header(ae, "gzip, deflate, peerdist", pd, "Version=1.1", pdEx, ex1_2), 2, "1.1"},
		{"Ex 1.0-1.0", header(ae, "peerdist", pd, "Version=1.1", pdEx, "MinContentInformation=1.0, MaxContentInformation=1.0"), 1, "1.1"},
		{"Ex 2.0-2.0", header(ae, "peerdist", pd, "Version=1.1", pdEx, "MinContentInformation=2.0, MaxContentInformation=2.0"), 2, "1.1"},
		{"Ex 1.0-3.0 picks highest supported", header(ae, "peerdist", pd, "Version=1.1", pdEx, "MinContentInformation=1.0, MaxContentInformation=3.0"), 2, "1.1"},
		{"Ex 2.0-1.0 is invalid", header(ae, "peerdist", pd, "Version=1.1", pdEx, "MinContentInformation=2.0, MaxContentInformation=1.0"), 0, ""},
		{"Ex 3.0-4.0 has no supported version", header(ae, "peerdist", pd, "Version=1.1", pdEx, "MinContentInformation=3.0, MaxContentInformation=4.0"), 0, ""},
		{"Ex 1.1-1.9 has no supported version", header(ae, "peerdist", pd, "Version=1.1", pdEx, "MinContentInformation=1.1, MaxContentInformation=1.9"), 0, ""},
		{"Ex without max", header(ae, "peerdist", pd, "Version=1.1", pdEx, "MinContentInformation=1.0"), 0, ""},
		{"Ex unparseable", header(ae, "peerdist", pd, "Version=1.1", pdEx, "MinContentInformation=one"), 0, ""},
		{"1.1 client without Ex gets V1", header(ae, "peerdist", pd, "Version=1.1"), 1, "1.1"},
		{"1.0 client's Ex is ignored", header(ae, "peerdist", pd, "Version=1.0", pdEx, ex1_2), 1, "1.0"},
		{"later client gets 1.1", header(ae, "peerdist", pd, "Version=1.23", pdEx, ex1_2), 2, "1.1"},
		{"version below 1.0", header(ae, "peerdist", pd, "Version=0.9"), 0, ""},
		{"suite's incompatible Version=999.999", header(ae, "peerdist", pd, "Version=999.999"), 0, ""},
		{"major version 2", header(ae, "peerdist", pd, "Version=2.0", pdEx, ex1_2), 0, ""},
		{"suite's MissingDataRequest=false", header(ae, "peerdist", pd, "Version=1.0, MissingDataRequest=false"), 1, "1.0"},
		{"suite's MissingDataRequest=InvalidValue", header(ae, "peerdist", pd, "Version=1.0, MissingDataRequest=InvalidValue"), 0, ""},
		{"suite's incompatible Ex 900.0-999.0", header(ae, "peerdist", pd, "Version=1.1", pdEx, "MinContentInformation=900.0, MaxContentInformation=999.0"), 0, ""},
		{"no peerdist in Accept-Encoding", header(ae, "gzip, deflate", pd, "Version=1.1", pdEx, ex1_2), 0, ""},
		{"no Accept-Encoding", header(pd, "Version=1.1", pdEx, ex1_2), 0, ""},
		{"peerdist;q=0", header(ae, "peerdist;q=0", pd, "Version=1.1", pdEx, ex1_2), 0, ""},
		{"Accept-Encoding over two lines", header(ae, "gzip", ae, "peerdist", pd, "Version=1.0"), 1, "1.0"},
		{"MissingDataRequest", header(ae, "peerdist", pd, "Version=1.1, MissingDataRequest=true"), 0, ""},
		{"iPXE missing-data fallback", header(pd, "Version=1.1, MissingDataRequest=true"), 0, ""},
		{"no X-P2P-PeerDist", header(ae, "peerdist"), 0, ""},
		{"X-P2P-PeerDist garbage", header(ae, "peerdist", pd, "Version=1"), 0, ""},
		{"X-P2P-PeerDist over two lines", header(ae, "peerdist", pd, "Version=1.1", pd, "Foo=bar"), 1, "1.1"},
		{"lower-case names via Header.Add", header("accept-encoding", "peerdist", "x-p2p-peerdist", "Version=1.1", "x-p2p-peerdistex", ex1_2), 2, "1.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := Negotiate(tt.h)
			if n.UsePeerDist != (tt.wantCI != 0) || n.ContentInformation != tt.wantCI {
				t.Fatalf("Negotiate = %+v; want content information %d", n, tt.wantCI)
			}
			if !n.UsePeerDist {
				if n.Reason == "" {
					t.Error("plain answer without a reason")
				}
				return
			}
			if got := n.Version.String(); got != tt.wantVersion {
				t.Errorf("response version %s, want %s", got, tt.wantVersion)
			}
		})
	}
}

// The iPXE request headers negotiate content information 2.0 and PeerDist
// 1.1, as a Windows 8 client's do.
func TestNegotiateIPXERequest(t *testing.T) {
	h := http.Header{}
	IPXERequest().SetHeaders(h)
	n := Negotiate(h)
	if !n.UsePeerDist || n.ContentInformation != 2 || n.Version != (Version{1, 1}) {
		t.Errorf("Negotiate(iPXE) = %+v, want V2 content information with Version 1.1", n)
	}
}

func TestNegotiateHashRequest(t *testing.T) {
	n := Negotiate(header("Accept-Encoding", "peerdist", HeaderPeerDist, "Version=1.1",
		HeaderPeerDistEx, "MinContentInformation=1.0, MaxContentInformation=2.0, HashRequest=true"))
	if !n.UsePeerDist || !n.HashRequest {
		t.Errorf("Negotiate = %+v, want peerdist with HashRequest", n)
	}
}

func TestSetResponseHeaders(t *testing.T) {
	tests := []struct {
		client string
		want   string
	}{
		{"Version=1.0", "Version=1.0, ContentLength=99710"},
		{"Version=1.1", "Version=1.1, ContentLength=99710"},
	}
	for _, tt := range tests {
		n := Negotiate(header("Accept-Encoding", "peerdist", HeaderPeerDist, tt.client))
		h := http.Header{}
		n.SetResponseHeaders(h, 99710)
		if got := h.Get("Content-Encoding"); got != "peerdist" {
			t.Errorf("%s: Content-Encoding %q", tt.client, got)
		}
		if got := h.Get(HeaderPeerDist); got != tt.want {
			t.Errorf("%s: X-P2P-PeerDist %q, want %q", tt.client, got, tt.want)
		}
	}
	h := http.Header{}
	plain("test").SetResponseHeaders(h, 1)
	if len(h) != 0 {
		t.Errorf("plain negotiation set headers %v", h)
	}
}

func TestSetHashesPending(t *testing.T) {
	h := http.Header{}
	SetHashesPending(h)
	if got := h.Get(HeaderPeerDistEx); got != "MakeHashRequest=true" {
		t.Errorf("X-P2P-PeerDistEx %q, want MakeHashRequest=true", got)
	}
	r, err := ParseResponseHeaders(h)
	if err != nil || r.PeerDist || !r.MakeHashRequest {
		t.Errorf("client reads %+v, %v; want plain with MakeHashRequest", r, err)
	}
}
