package retrieval

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outpost-appliance/outpost/peerdist/pccrr"
	"github.com/outpost-appliance/outpost/peerdist/vectors"
)

func serve(t *testing.T, h http.Handler) string {
	t.Helper()
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	return strings.TrimPrefix(ts.URL, "http://")
}

func TestClientAgainstServer(t *testing.T) {
	ctx := context.Background()
	src := newMemSource()
	id := vectors.Hex(t, v1SegmentID)
	other := vectors.Hex(t, v2SegmentA)
	src.put(id, 0, Block{Crypto: pccrr.CryptoAES256, Ciphertext: bytes.Repeat([]byte{1}, 65552), IV: bytes.Repeat([]byte{2}, 16)}, time.Now())
	src.put(id, 2, Block{Crypto: pccrr.CryptoAES256, Ciphertext: bytes.Repeat([]byte{3}, 48), IV: bytes.Repeat([]byte{4}, 16)}, time.Now())
	addr := serve(t, &Server{Source: src})
	var c Client

	blk, err := c.GetBlock(ctx, addr, id, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(blk.Block) != 65552 || blk.Block[0] != 1 || blk.IV[0] != 2 || blk.NextBlockIndex != 2 {
		t.Errorf("block 0: %d bytes, next %d", len(blk.Block), blk.NextBlockIndex)
	}
	if _, err := c.GetBlock(ctx, addr, id, 1); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing block: %v", err)
	}
	if _, err := c.GetBlock(ctx, addr, other, 0); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown segment: %v", err)
	}
	list, err := c.GetBlockList(ctx, addr, id, []pccrr.BlockRange{{Index: 0, Count: 4}})
	if err != nil || len(list.Ranges) != 2 || list.Ranges[0] != (pccrr.BlockRange{Index: 0, Count: 1}) || list.Ranges[1] != (pccrr.BlockRange{Index: 2, Count: 1}) {
		t.Errorf("block list %v, %v", list, err)
	}
	segs, err := c.GetSegmentList(ctx, addr, [][]byte{other, id})
	if err != nil || len(segs.Ranges) != 1 || segs.Ranges[0] != (pccrr.SegmentRange{Index: 1, Count: 1}) {
		t.Errorf("segment list %v, %v", segs, err)
	}
	nego, err := c.Negotiate(ctx, addr)
	if err != nil || nego.MaxVersion.Major != 2 {
		t.Errorf("negotiate %v, %v", nego, err)
	}
}

// A peer whose answer cannot be trusted gives a PeerError: nothing from it
// may be stored.
func TestClientRejectsBadPeers(t *testing.T) {
	id := vectors.Hex(t, v1SegmentID)
	respond := func(m pccrr.Message) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			out, err := m.Marshal()
			if err != nil {
				t.Errorf("test reply: %v", err)
			}
			w.Write(out)
		}
	}
	block := bytes.Repeat([]byte{9}, 32)
	wrongID := bytes.Clone(id)
	wrongID[0] ^= 1
	for _, tc := range []struct {
		name    string
		handler http.Handler
	}{
		{"wrong type", respond(&pccrr.BlkList{SegmentID: id})},
		{"other segment", respond(&pccrr.Blk{Crypto: pccrr.CryptoAES128, SegmentID: wrongID, Block: block, IV: make([]byte, 16)})},
		{"other block", respond(&pccrr.Blk{Crypto: pccrr.CryptoAES128, SegmentID: id, BlockIndex: 5, Block: block, IV: make([]byte, 16)})},
		{"no IV", respond(&pccrr.Blk{Crypto: pccrr.CryptoNone, SegmentID: id, Block: block})},
		{"NEGO_RESP", respond(pccrr.NewNegoResp())},
		{"HTTP 500", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "boom", 500) })},
		{"garbage", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("<html>hello</html>")) })},
		{"wrong version", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			out, _ := (&pccrr.Blk{Crypto: pccrr.CryptoAES128, SegmentID: id, Block: block, IV: make([]byte, 16)}).Marshal()
			out[4+3] = 3 // ProtVer 3.0
			w.Write(out)
		})},
	} {
		var c Client
		_, err := c.GetBlock(context.Background(), serve(t, tc.handler), id, 0)
		var pe *PeerError
		if tc.name == "no IV" {
			// A plaintext block without IV is legal (iPXE accepts it); the
			// caller's hash check decides. It must not be a transport error.
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
			continue
		}
		if !errors.As(err, &pe) {
			t.Errorf("%s: err = %v, want a PeerError", tc.name, err)
		}
	}
}

func TestClientTimeout(t *testing.T) {
	release := make(chan struct{})
	addr := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-release }))
	defer close(release)
	c := Client{Timeout: 200 * time.Millisecond}
	start := time.Now()
	_, err := c.GetBlock(context.Background(), addr, make([]byte, 32), 0)
	if err == nil || time.Since(start) > 5*time.Second {
		t.Errorf("slow peer: %v after %v", err, time.Since(start))
	}
}

// A thousand retrievals at once all get their block (or, beyond the
// concurrency limit, an honest "not found"), and the server stays up.
func TestThousandConcurrentRetrievals(t *testing.T) {
	src := newMemSource()
	id := vectors.Hex(t, v1SegmentID)
	for i := range uint32(8) {
		src.put(id, i, Block{Crypto: pccrr.CryptoAES256, Ciphertext: bytes.Repeat([]byte{byte(i)}, 65552), IV: make([]byte, 16)}, time.Now())
	}
	addr := serve(t, &Server{Source: src})
	c := Client{HTTP: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, MaxConnsPerHost: 256}}}
	var wg sync.WaitGroup
	var mu sync.Mutex
	failures := map[string]int{}
	for n := range 1000 {
		wg.Go(func() {
			blk, err := c.GetBlock(context.Background(), addr, id, uint32(n%8))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				failures[err.Error()]++
			case blk.Block[0] != byte(n%8):
				failures["wrong block"]++
			}
		})
	}
	wg.Wait()
	if len(failures) != 0 {
		t.Errorf("failures: %v", failures)
	}
}
