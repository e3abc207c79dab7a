package hostedcache

import (
	"bytes"
	"context"
	"crypto/rand"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outpost-appliance/outpost/cache/retrieval"
	"github.com/outpost-appliance/outpost/cache/store"
	"github.com/outpost-appliance/outpost/peerdist/pccrr"
	"github.com/outpost-appliance/outpost/peerdist/pchc"
)

func openStore(t testing.TB) *store.Store {
	t.Helper()
	opts := store.DefaultOptions(t.TempDir())
	opts.Logger = slog.New(slog.DiscardHandler)
	st, err := store.Open(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// batchedOffer makes a BATCHED_OFFER of n one-block V1 segments.
func batchedOffer(n int) []pchc.SegmentDescriptor {
	tag := pchc.MakeContentTag("WinINet")
	out := make([]pchc.SegmentDescriptor, n)
	for i := range out {
		out[i] = pchc.SegmentDescriptor{BlockSize: 65536, SegmentSize: 65536, ContentTag: tag[:], HashAlgorithm: pchc.HashSHA256}
		rand.Read(out[i].HoHoDk[:])
	}
	return out
}

// A thousand clients retrieving at once from the real store all get their
// block, or at the concurrency limit an honest empty answer; the server
// stays up and answers afterwards.
func TestThousandConcurrentRetrievalsFromTheStore(t *testing.T) {
	st := openStore(t)
	ctx := context.Background()
	offers := batchedOffer(16)
	cache := &Cache{Store: st, Stats: &Stats{}, Puller: &Puller{}}
	cache.BatchedOffer(ctx, netip.MustParseAddrPort("127.0.0.1:1"), offers) // the puller never runs here
	for i, d := range offers {
		ct := bytes.Repeat([]byte{byte(i)}, 65552)
		if _, err := st.PutBlock(ctx, d.HoHoDk[:], 0, store.Block{Crypto: pccrr.CryptoAES256, IV: make([]byte, 16), Ciphertext: ct}); err != nil {
			t.Fatal(err)
		}
	}
	ts := httptest.NewServer(Handler(&OfferServer{Offers: cache}, &retrieval.Server{Source: cache.Source(), Observer: cache.Stats}))
	defer ts.Close()
	addr := strings.TrimPrefix(ts.URL, "http://")
	client := &retrieval.Client{HTTP: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, MaxConnsPerHost: 200}}}
	var wg sync.WaitGroup
	var mu sync.Mutex
	failures := map[string]int{}
	for n := range 1000 {
		wg.Go(func() {
			i := n % len(offers)
			blk, err := client.GetBlock(ctx, addr, offers[i].HoHoDk[:], 0)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				failures[err.Error()]++
			case blk.Block[0] != byte(i) || len(blk.Block) != 65552:
				failures["wrong block"]++
			}
		})
	}
	wg.Wait()
	if len(failures) != 0 {
		t.Errorf("failures: %v", failures)
	}
	if got := cache.Stats.Snapshot()[pchc.TagWinINet]; got.Hits != 1000 || got.BytesServed != 1000*65552 {
		t.Errorf("statistics: %+v", got)
	}
}

// A client that offers and then answers slowly costs only its own pull:
// the offer is answered at once, and another client's offer is pulled
// meanwhile.
func TestSlowOfferingClient(t *testing.T) {
	st := openStore(t)
	ctx := context.Background()
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()
	defer close(release) // before Close, which waits for the handlers
	fastOffer := batchedOffer(1)
	ct := make([]byte, 65552)
	fast := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		out, _ := (&pccrr.Blk{Crypto: pccrr.CryptoAES256, SegmentID: fastOffer[0].HoHoDk[:], Block: ct, IV: make([]byte, 16)}).Marshal()
		w.Write(out)
	}))
	defer fast.Close()

	cache := &Cache{Store: st, Stats: &Stats{}}
	cache.Puller = &Puller{Client: &retrieval.Client{Timeout: 500 * time.Millisecond}, Sink: cache, Observer: cache.Stats, Attempts: 1,
		Logger: slog.New(slog.DiscardHandler)}
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go cache.Puller.Run(pctx)
	h := Handler(&OfferServer{Offers: cache}, &retrieval.Server{Source: cache.Source()})
	send := func(server *httptest.Server, segs []pchc.SegmentDescriptor) time.Duration {
		port := netip.MustParseAddrPort(server.Listener.Addr().String()).Port()
		body, _ := pchc.BatchedOffer{Port: port, Segments: segs}.Marshal()
		req := httptest.NewRequest(http.MethodPost, pchc.PathV2, bytes.NewReader(body))
		req.RemoteAddr = "127.0.0.1:40000"
		start := time.Now()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			t.Fatalf("offer answered HTTP %d", rec.Code)
		}
		return time.Since(start)
	}
	send(slow, batchedOffer(4))
	send(fast, fastOffer)
	waitFor(t, "the fast client's segment", func() bool {
		info, err := st.Segment(ctx, fastOffer[0].HoHoDk[:])
		return err == nil && info.Complete()
	})
	waitFor(t, "the slow client's pulls to time out", func() bool {
		return cache.Stats.Snapshot()[pchc.TagWinINet].PullFailures == 4
	})
}

// How long answering a full BATCHED_OFFER (128 segments) takes with the
// real store: a Windows client gives up after roughly 10 s.
func BenchmarkBatchedOffer128(b *testing.B) {
	st := openStore(b)
	cache := &Cache{Store: st, Stats: &Stats{}, Puller: &Puller{QueueSize: 1 << 20}}
	peer := netip.MustParseAddrPort("127.0.0.1:1")
	for b.Loop() {
		cache.BatchedOffer(context.Background(), peer, batchedOffer(128))
	}
}

// countingOffers records offers not taken.
type countingOffers struct {
	mu                 sync.Mutex
	notCached, dropped int
}

func (c *countingOffers) OfferNotCached(netip.AddrPort, []byte, string, error) {
	c.mu.Lock()
	c.notCached++
	c.mu.Unlock()
}

func (c *countingOffers) OfferMalformed(string, error) {
	c.mu.Lock()
	c.dropped++
	c.mu.Unlock()
}

// Offers that are not taken reach the observer: a segment offered again
// with another size (a conflict with the store), and a malformed message.
func TestOffersNotTakenAreObserved(t *testing.T) {
	st := openStore(t)
	seen := &countingOffers{}
	cache := &Cache{Store: st, Stats: &Stats{}, Puller: &Puller{}, Observer: seen}
	peer := netip.MustParseAddrPort("127.0.0.1:1")
	offer := batchedOffer(1)
	cache.BatchedOffer(context.Background(), peer, offer)
	offer[0].SegmentSize = 1000
	cache.BatchedOffer(context.Background(), peer, offer)
	h := Handler(&OfferServer{Offers: cache, Observer: seen}, &retrieval.Server{Source: cache.Source()})
	req := httptest.NewRequest(http.MethodPost, pchc.PathV2, bytes.NewReader([]byte("garbage")))
	h.ServeHTTP(httptest.NewRecorder(), req)
	if seen.notCached != 1 || seen.dropped != 1 {
		t.Errorf("observed %d not cached, %d malformed; want 1 and 1", seen.notCached, seen.dropped)
	}
}
