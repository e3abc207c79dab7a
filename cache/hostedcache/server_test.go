package hostedcache

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync"
	"testing"

	"github.com/outpost-appliance/outpost/cache/retrieval"
	"github.com/outpost-appliance/outpost/peerdist/pccrc"
	"github.com/outpost-appliance/outpost/peerdist/pchc"
	"github.com/outpost-appliance/outpost/peerdist/vectors"
)

// recordingOffers records what the offer server hands on.
type recordingOffers struct {
	mu      sync.Mutex
	known   bool
	initial []netip.AddrPort
	infos   []*pccrc.Info
	batches [][]pchc.SegmentDescriptor
	peers   []netip.AddrPort
}

func (r *recordingOffers) InitialOffer(_ context.Context, peer netip.AddrPort, id []byte) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.initial = append(r.initial, peer)
	return r.known
}

func (r *recordingOffers) SegmentInfo(_ context.Context, peer netip.AddrPort, tag []byte, ci *pccrc.Info) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.infos = append(r.infos, ci)
	r.peers = append(r.peers, peer)
}

func (r *recordingOffers) BatchedOffer(_ context.Context, peer netip.AddrPort, s []pchc.SegmentDescriptor) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.batches = append(r.batches, s)
	r.peers = append(r.peers, peer)
}

func postOffer(t *testing.T, h http.Handler, path string, body []byte) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
	req.RemoteAddr = "10.0.0.7:50123"
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestOfferServerAnswers(t *testing.T) {
	golden := vectors.GoldenTable(t, "mstest-vectors", "derived", "golden_messages.txt")
	ok := vectors.Read(t, "peerdist-vectors", "derived", "pchc_response_ok.bin")
	interested := vectors.Read(t, "peerdist-vectors", "derived", "pchc_response_interested.bin")
	for _, tc := range []struct {
		name  string
		body  []byte
		known bool
		want  []byte
	}{
		{"initial offer, hashes unknown", vectors.Lookup(t, golden, "pchc_initial_offer_v1"), false, interested},
		{"initial offer, hashes known", vectors.Lookup(t, golden, "pchc_initial_offer_v1"), true, ok},
		{"segment info", vectors.Lookup(t, golden, "pchc_segment_info_v1_spec"), false, ok},
		{"segment info as the suite sends it", vectors.Lookup(t, golden, "pchc_segment_info_v1_as_suite_sends"), false, ok},
		{"batched offer", vectors.Lookup(t, golden, "pchc_batched_offer_v2"), false, ok},
	} {
		for _, path := range []string{pchc.PathV1, pchc.PathV2, "/0131501B-D67F-491B-9A40-C4BF27BCB4D4"} {
			offers := &recordingOffers{known: tc.known}
			h := Handler(&OfferServer{Offers: offers}, &retrieval.Server{})
			rec := postOffer(t, h, path, tc.body)
			if rec.Code != http.StatusOK || !bytes.Equal(rec.Body.Bytes(), tc.want) {
				t.Errorf("%s on %s: HTTP %d %x", tc.name, path, rec.Code, rec.Body.Bytes())
			}
			want := netip.MustParseAddrPort("10.0.0.7:8282") // the vectors' CONNECTION_INFORMATION port
			for _, peer := range append(offers.initial[:0:0], append(offers.initial, offers.peers...)...) {
				if peer != want {
					t.Errorf("%s: peer %v, want %v", tc.name, peer, want)
				}
			}
		}
	}
}

// Invalid messages are dropped (400, connection closed); an unknown hash
// algorithm is answered OK with nothing pulled, as the MS suite expects.
func TestOfferServerDrops(t *testing.T) {
	golden := vectors.GoldenTable(t, "mstest-vectors", "derived", "golden_messages.txt")
	batch := vectors.Lookup(t, golden, "pchc_batched_offer_v2")
	unknownAlgo := bytes.Clone(batch)
	unknownAlgo[16+4+4+2+16] = 0xFE
	emptyTag := append(bytes.Clone(batch[:16+8]), 0, 0, pchc.HashTruncatedSHA512)
	emptyTag = append(emptyTag, batch[len(batch)-32:]...)
	offers := &recordingOffers{}
	h := Handler(&OfferServer{Offers: offers}, &retrieval.Server{})
	for _, tc := range []struct {
		name string
		body []byte
	}{
		{"empty", nil},
		{"no descriptors", batch[:16]},
		{"empty content tag", emptyTag},
		{"truncated", batch[:len(batch)-1]},
		{"over 64 KiB", make([]byte, pchc.MaxMessageSize+1)},
	} {
		rec := postOffer(t, h, pchc.PathV2, tc.body)
		if rec.Code != http.StatusBadRequest || rec.Body.Len() != 0 || rec.Header().Get("Connection") != "close" {
			t.Errorf("%s: HTTP %d, %d bytes", tc.name, rec.Code, rec.Body.Len())
		}
	}
	rec := postOffer(t, h, pchc.PathV2, unknownAlgo)
	if rec.Code != http.StatusOK || rec.Body.Bytes()[4] != byte(pchc.ResponseOK) {
		t.Errorf("unknown algorithm: HTTP %d %x", rec.Code, rec.Body.Bytes())
	}
	if len(offers.batches)+len(offers.infos)+len(offers.initial) != 0 {
		t.Errorf("dropped offers reached the cache: %+v", offers)
	}
	if rec := postOffer(t, h, "/other", batch); rec.Code != http.StatusNotFound {
		t.Errorf("other path: HTTP %d", rec.Code)
	}
}
