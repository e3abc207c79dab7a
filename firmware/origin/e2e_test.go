package origin

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/outpost-appliance/outpost/cache/retrieval"
	"github.com/outpost-appliance/outpost/firmware/getcmd"
	"github.com/outpost-appliance/outpost/peerdist/pccrc"
	"github.com/outpost-appliance/outpost/peerdist/pccrtp"
)

// End to end, as a branch client works: content information from the
// origin (over HTTP, with the client's PeerDist headers), blocks from a
// peer that holds the file (MS-PCCRR, encrypted with the segment secrets
// of that content information), reconstructed and verified by `outpost
// get`'s fetcher, byte-identical; and a block the peers lack fetched from
// the origin with a missing-data range request, checked against its hash.
func TestEndToEndWithPeer(t *testing.T) {
	const size = 700_000
	for _, tc := range []struct {
		name       string
		client     pccrtp.ClientRequest
		rangeStart int64
		rangeLen   int64
	}{
		{"V1 whole file", pccrtp.ClientRequest{Version: pccrtp.Version{Major: 1}}, 0, 0},
		{"V2 whole file", pccrtp.IPXERequest(), 0, 0},
		{"V1 range", pccrtp.ClientRequest{Version: pccrtp.Version{Major: 1}}, 100_000, 250_000},
		{"V2 range", pccrtp.IPXERequest(), 100_000, 250_000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fx := newFixture(t, func(o *Options) { o.InlineHashLimit = 1 << 20 })
			data := fx.write(t, "deploy/boot.wim", size, 30)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()

			// The client asks the origin for content information.
			req, _ := http.NewRequestWithContext(ctx, "GET", fx.ts.URL+"/deploy/boot.wim", nil)
			tc.client.SetHeaders(req.Header)
			want := data
			if tc.rangeLen > 0 {
				req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", tc.rangeStart, tc.rangeStart+tc.rangeLen-1))
				want = data[tc.rangeStart : tc.rangeStart+tc.rangeLen]
			}
			resp, err := fx.ts.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			pd, err := pccrtp.ParseResponseHeaders(resp.Header)
			if err != nil || !pd.PeerDist || pd.ContentLength != int64(len(want)) {
				t.Fatalf("origin answer: %+v, %v", pd, err)
			}
			ci, err := pccrc.Parse(raw)
			if err != nil {
				t.Fatal(err)
			}

			// A peer that downloaded the whole file earlier serves it.
			whole := fetchCI(t, fx, tc.client)
			peer := httptest.NewServer(&retrieval.Server{Source: retrieval.NewContentSource(whole, bytes.NewReader(data)), Logger: quiet})
			defer peer.Close()
			out := filepath.Join(t.TempDir(), "boot.wim")
			f := getcmd.Fetcher{Client: &retrieval.Client{}, Parallel: 4}
			if _, err := f.Fetch(ctx, strings.TrimPrefix(peer.URL, "http://"), ci, out); err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("reconstructed %d bytes differ from the %d of the file", len(got), len(want))
			}

			// A block no peer has: the origin serves it to a missing-data
			// request, conditioned on the version the content information
			// describes, and it matches its hash.
			seg := ci.Segments[len(ci.Segments)-1]
			off, n := seg.Offset, uint64(seg.Size)
			if ci.Version == pccrc.V1 {
				o, l := pccrc.BlockSpan(seg.Size, len(seg.BlockHashes)-1)
				off, n = off+uint64(o), uint64(l)
			}
			mreq, _ := http.NewRequestWithContext(ctx, "GET", fx.ts.URL+"/deploy/boot.wim", nil)
			pccrtp.SetMissingDataRequest(mreq.Header, pd.Version)
			mreq.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", off, off+n-1))
			mreq.Header.Set("If-Range", resp.Header.Get("ETag"))
			mresp, err := fx.ts.Client().Do(mreq)
			if err != nil {
				t.Fatal(err)
			}
			block, _ := io.ReadAll(mresp.Body)
			mresp.Body.Close()
			if mresp.StatusCode != http.StatusPartialContent {
				t.Fatalf("missing-data request: status %d", mresp.StatusCode)
			}
			hash := seg.HashOfData
			if ci.Version == pccrc.V1 {
				hash = seg.BlockHashes[len(seg.BlockHashes)-1]
			}
			if !pccrc.VerifyBlock(ci.Algo, hash, block) {
				t.Fatal("the origin's bytes do not match the content information")
			}
		})
	}
}

// fetchCI gets the whole-file content information as client c.
func fetchCI(t *testing.T, fx *fixture, c pccrtp.ClientRequest) *pccrc.Info {
	t.Helper()
	req, _ := http.NewRequest("GET", fx.ts.URL+"/deploy/boot.wim", nil)
	c.SetHeaders(req.Header)
	resp, err := fx.ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	ci, err := pccrc.Parse(raw)
	if err != nil {
		t.Fatalf("whole-file content information: %v", err)
	}
	return ci
}
