package origin

import (
	"bytes"
	"net/http"
	"strconv"
	"testing"

	"github.com/outpost-appliance/outpost/peerdist/pccrc"
	"github.com/outpost-appliance/outpost/peerdist/pccrtp"
)

// The negotiation matrix of protocols.md §6 and MS-PCCRTP §3.2.5.1, with
// content information ready: which requests get content information in
// which version, with which response headers, and which get the content.
func TestNegotiationMatrix(t *testing.T) {
	const (
		ae   = "Accept-Encoding"
		pd   = "X-P2P-PeerDist"
		pdEx = "X-P2P-PeerDistEx"
	)
	both := []pccrc.Version{pccrc.V1, pccrc.V2}
	onlyV1 := []pccrc.Version{pccrc.V1}
	onlyV2 := []pccrc.Version{pccrc.V2}
	tests := []struct {
		name     string
		versions []pccrc.Version
		method   string
		headers  []string
		wantCI   int    // 0: the content
		wantPD   string // X-P2P-PeerDist of a peerdist response
	}{
		{"Windows 7 (Version=1.0)", both, "GET", win7, 1, "Version=1.0, ContentLength=300000"},
		{"Windows 8 (1.1, CI 1.0-2.0)", both, "GET", win8, 2, "Version=1.1, ContentLength=300000"},
		{"1.1 asking for CI 1.0 only", both, "GET", win8V1, 1, "Version=1.1, ContentLength=300000"},
		{"1.1 without X-P2P-PeerDistEx gets V1", both, "GET", []string{ae, "peerdist", pd, "Version=1.1"}, 1, "Version=1.1, ContentLength=300000"},
		{"1.1 asking for CI 2.0 only", both, "GET", []string{ae, "peerdist", pd, "Version=1.1", pdEx, "MinContentInformation=2.0, MaxContentInformation=2.0"}, 2, "Version=1.1, ContentLength=300000"},
		{"HEAD negotiates like GET", both, "HEAD", win8, 2, "Version=1.1, ContentLength=300000"},
		{"iPXE request", both, "GET", []string{ae, "peerdist", pd, "Version=1.1", pdEx, "MinContentInformation=1.0, MaxContentInformation=2.0"}, 2, "Version=1.1, ContentLength=300000"},
		{"later 1.x client answered as 1.1", both, "GET", []string{ae, "peerdist", pd, "Version=1.23", pdEx, "MinContentInformation=1.0, MaxContentInformation=2.0"}, 2, "Version=1.1, ContentLength=300000"},
		{"V2 off: 1.0-2.0 client gets V1", onlyV1, "GET", win8, 1, "Version=1.1, ContentLength=300000"},
		{"V2 off: 2.0-only client gets the content", onlyV1, "GET", []string{ae, "peerdist", pd, "Version=1.1", pdEx, "MinContentInformation=2.0, MaxContentInformation=2.0"}, 0, ""},
		{"V1 off: Windows 7 gets the content", onlyV2, "GET", win7, 0, ""},
		{"V1 off: Windows 8 gets V2", onlyV2, "GET", win8, 2, "Version=1.1, ContentLength=300000"},
		{"no peerdist in Accept-Encoding", both, "GET", []string{ae, "gzip, deflate", pd, "Version=1.1", pdEx, "MinContentInformation=1.0, MaxContentInformation=2.0"}, 0, ""},
		{"peerdist;q=0", both, "GET", []string{ae, "peerdist;q=0", pd, "Version=1.1"}, 0, ""},
		{"no X-P2P-PeerDist", both, "GET", []string{ae, "peerdist"}, 0, ""},
		{"plain browser request", both, "GET", nil, 0, ""},
		// The content-server cases of Microsoft's conformance suite.
		{"suite: Version=999.999", both, "GET", []string{ae, "peerdist", pd, "Version=999.999"}, 0, ""},
		{"suite: MissingDataRequest=InvalidValue", both, "GET", []string{ae, "peerdist", pd, "Version=1.0, MissingDataRequest=InvalidValue"}, 0, ""},
		{"suite: MissingDataRequest=false", both, "GET", []string{ae, "peerdist", pd, "Version=1.0, MissingDataRequest=false"}, 1, "Version=1.0, ContentLength=300000"},
		{"suite: CI range 900.0-999.0 cannot be met", both, "GET", []string{ae, "peerdist", pd, "Version=1.1", pdEx, "MinContentInformation=900.0, MaxContentInformation=999.0"}, 0, ""},
		{"suite: no peerdist after hashing", both, "GET", []string{ae, "gzip"}, 0, ""},
		{"MissingDataRequest=true", both, "GET", []string{pd, "Version=1.1, MissingDataRequest=true"}, 0, ""},
		{"CI range 2.0-1.0 is invalid", both, "GET", []string{ae, "peerdist", pd, "Version=1.1", pdEx, "MinContentInformation=2.0, MaxContentInformation=1.0"}, 0, ""},
		{"garbage X-P2P-PeerDist", both, "GET", []string{ae, "peerdist", pd, "Version=one"}, 0, ""},
		{"garbage X-P2P-PeerDistEx", both, "GET", []string{ae, "peerdist", pd, "Version=1.1", pdEx, "MinContentInformation"}, 0, ""},
	}
	cache := t.TempDir() // shared, so each version is hashed once per run
	var data []byte
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fx := newFixture(t, func(o *Options) { o.Versions = tt.versions; o.CacheDir = cache })
			data = fx.write(t, "pub/file.bin", 300000, 1)
			for _, v := range tt.versions {
				fx.waitHashed(t, "pub/file.bin", v)
			}
			plain, _ := fx.get(t, "GET", "/pub/file.bin")
			resp, body := fx.get(t, tt.method, "/pub/file.bin", tt.headers...)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d", resp.StatusCode)
			}
			for _, h := range []string{"ETag", "Last-Modified", "Vary", "Content-Type"} {
				if got, want := resp.Header.Get(h), plain.Header.Get(h); got != want || got == "" {
					t.Errorf("%s %q, the content's is %q", h, got, want)
				}
			}
			if got := resp.Header.Get("Vary"); got != varyHeader {
				t.Errorf("Vary %q", got)
			}
			if tt.wantCI == 0 {
				if ce := resp.Header.Get("Content-Encoding"); ce != "" {
					t.Fatalf("Content-Encoding %q, want the content", ce)
				}
				if tt.method == "GET" && !bytes.Equal(body, data) {
					t.Fatalf("body of %d bytes is not the file", len(body))
				}
				return
			}
			r, err := pccrtp.ParseResponseHeaders(resp.Header)
			if err != nil || !r.PeerDist {
				t.Fatalf("not a peerdist response: %+v, %v (headers %v)", r, err, resp.Header)
			}
			if got := resp.Header.Get("X-P2P-PeerDist"); got != tt.wantPD {
				t.Errorf("X-P2P-PeerDist %q, want %q", got, tt.wantPD)
			}
			if tt.method == "HEAD" {
				if len(body) != 0 {
					t.Fatal("HEAD with a body")
				}
				return
			}
			if got := resp.Header.Get("Content-Length"); got != strconv.Itoa(len(body)) {
				t.Errorf("Content-Length %q, body %d bytes", got, len(body))
			}
			ci := parseCI(t, body)
			if int(ci.Version) != tt.wantCI {
				t.Fatalf("content information V%d, want V%d", ci.Version, tt.wantCI)
			}
			checkCI(t, ci, data, 0, uint64(len(data)))
			if ci.Version == pccrc.V1 && ci.ReadBytesInLastSegment != 0 {
				t.Errorf("dwReadBytesInLastSegment %d, IIS sends 0 for a whole file", ci.ReadBytesInLastSegment)
			}
		})
	}
}

// Microsoft's conformance suite (ContentServer_PccrtpServer_*) sends a
// peerdist request to trigger hashing, waits until the hashes exist, then
// sends a changed request and expects the content, byte-identical to what
// the first request returned. That first answer is the content only when
// hashing happens in the background, as IIS does (InlineHashLimit 0).
func TestConformanceSuiteFlow(t *testing.T) {
	cases := []struct {
		name    string
		change  []string // headers replaced in the second request
		wantPD  bool
		request []string
	}{
		{"ContentEncodingNotHavePeerDist", []string{"Accept-Encoding", "gzip, deflate"}, false, win7},
		{"VersionIncompatible", []string{"X-P2P-PeerDist", "Version=999.999"}, false, win7},
		{"MissingDataRequestFalse", []string{"X-P2P-PeerDist", "Version=1.0, MissingDataRequest=false"}, true, win7},
		{"MissingDataRequestInvalid", []string{"X-P2P-PeerDist", "Version=1.0, MissingDataRequest=InvalidValue"}, false, win7},
		{"ContentInformationVersionIncompatible", []string{"X-P2P-PeerDistEx", "MinContentInformation=900.0, MaxContentInformation=999.0"}, false, win8},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fx := newFixture(t, nil)
			// The suite's MultipleBlocks.txt: 80 896 zero bytes.
			data := make([]byte, 80896)
			fx.put(t, "MultipleBlocks.txt", data)
			first, before := fx.get(t, "GET", "/MultipleBlocks.txt", tc.request...)
			if first.Header.Get("Content-Encoding") != "" || !bytes.Equal(before, data) {
				t.Fatal("the first request did not get the content")
			}
			v := pccrc.V1
			if tc.request[3] == "Version=1.1" {
				v = pccrc.V2
				if got := first.Header.Get("X-P2P-PeerDistEx"); got != "MakeHashRequest=true" {
					t.Errorf("first answer to a 1.1 client: X-P2P-PeerDistEx %q, want MakeHashRequest=true", got)
				}
				if got := first.Header.Get("X-P2P-PeerDist"); got != "Version=1.1" {
					t.Errorf("first answer: X-P2P-PeerDist %q, want Version=1.1 as IIS 8 sends", got)
				}
			}
			fx.waitHashed(t, "MultipleBlocks.txt", v)
			req := append([]string(nil), tc.request...)
			for i := 0; i < len(req); i += 2 {
				if req[i] == tc.change[0] {
					req[i+1] = tc.change[1]
				}
			}
			resp, after := fx.get(t, "GET", "/MultipleBlocks.txt", req...)
			isPD := resp.Header.Get("Content-Encoding") == "peerdist"
			if isPD != tc.wantPD {
				t.Fatalf("Content-Encoding %q, want peerdist=%v", resp.Header.Get("Content-Encoding"), tc.wantPD)
			}
			if !tc.wantPD && !bytes.Equal(after, before) {
				t.Fatal("the content differs from the first answer")
			}
		})
	}
}
