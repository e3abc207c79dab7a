package hostedcache

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/outpost-appliance/outpost/cache/retrieval"
	"github.com/outpost-appliance/outpost/peerdist/pccrc"
	"github.com/outpost-appliance/outpost/peerdist/pccrr"
)

// verifyingSink keeps verified plaintext blocks of known content.
type verifyingSink struct {
	info   *pccrc.Info
	mu     sync.Mutex
	held   map[string]map[uint32][]byte
	puts   atomic.Int64
	reject atomic.Int64
}

func (s *verifyingSink) segment(id []byte) (*pccrc.Segment, bool) {
	for i := range s.info.Segments {
		if bytes.Equal(s.info.ID(i), id) {
			return &s.info.Segments[i], true
		}
	}
	return nil, false
}

func (s *verifyingSink) Missing(_ context.Context, id []byte) ([]uint32, error) {
	seg, ok := s.segment(id)
	if !ok {
		return nil, errors.New("unknown segment")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []uint32
	for b := range seg.BlockHashes {
		if _, ok := s.held[string(id)][uint32(b)]; !ok {
			out = append(out, uint32(b))
		}
	}
	return out, nil
}

func (s *verifyingSink) Put(_ context.Context, id []byte, index uint32, blk *pccrr.Blk) error {
	s.puts.Add(1)
	seg, _ := s.segment(id)
	plain, err := retrieval.Plaintext(s.info.Algo, seg, index, blk)
	if err != nil {
		s.reject.Add(1)
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.held[string(id)] == nil {
		s.held[string(id)] = map[uint32][]byte{}
	}
	s.held[string(id)][index] = bytes.Clone(plain)
	return nil
}

func (s *verifyingSink) complete() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, seg := range s.info.Segments {
		if len(s.held[string(s.info.ID(i))]) != len(seg.BlockHashes) {
			return false
		}
	}
	return true
}

func content(t *testing.T, size int) ([]byte, *pccrc.Info) {
	t.Helper()
	data := make([]byte, size)
	rand.NewChaCha8([32]byte{7}).Read(data)
	ci, err := pccrc.GenerateV1(context.Background(), bytes.NewReader(data), pccrc.SHA256, []byte("k"))
	if err != nil {
		t.Fatal(err)
	}
	return data, ci
}

func peerFor(t *testing.T, h http.Handler) (netip.AddrPort, *atomic.Int64) {
	t.Helper()
	var requests atomic.Int64
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(ts.Close)
	return netip.MustParseAddrPort(ts.Listener.Addr().String()), &requests
}

func startPuller(t *testing.T, p *Puller) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Several clients offering the same segment at once cause one pull; a
// client serving corrupt data is abandoned for the next one that offered.
func TestPullerSingleFlightAndFallback(t *testing.T) {
	data, ci := content(t, 5*65536+10)
	corrupt := bytes.Clone(data)
	corrupt[3*65536] ^= 1
	bad, badRequests := peerFor(t, &retrieval.Server{Source: retrieval.NewContentSource(ci, bytes.NewReader(corrupt))})
	good, goodRequests := peerFor(t, &retrieval.Server{Source: retrieval.NewContentSource(ci, bytes.NewReader(data))})
	sink := &verifyingSink{info: ci, held: map[string]map[uint32][]byte{}}
	p := &Puller{Client: &retrieval.Client{}, Sink: sink}
	id := ci.ID(0)
	p.Enqueue(bad, id, "WinINet")
	p.Enqueue(good, id, "WinINet")
	p.Enqueue(good, id, "WinINet") // the same client again
	startPuller(t, p)
	waitFor(t, "the segment", sink.complete)
	if badRequests.Load() != 4 { // blocks 0-2 fine, block 3 corrupt
		t.Errorf("corrupt peer got %d requests, want 4", badRequests.Load())
	}
	if goodRequests.Load() != 3 { // the blocks still missing: 3, 4, 5
		t.Errorf("good peer got %d requests, want 3", goodRequests.Load())
	}
	if sink.reject.Load() != 1 {
		t.Errorf("%d blocks rejected, want 1", sink.reject.Load())
	}
	for i := range 6 {
		off, n := pccrc.BlockSpan(ci.Segments[0].Size, i)
		if !bytes.Equal(sink.held[string(id)][uint32(i)], data[off:off+n]) {
			t.Errorf("block %d differs", i)
		}
	}
}

// A peer that is down is retried with backoff, then given up; a peer that
// answers with garbage is not retried and nothing is stored.
func TestPullerRetriesAndGivesUp(t *testing.T) {
	_, ci := content(t, 65536)
	var calls atomic.Int64
	garbage, _ := peerFor(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Write([]byte("not pccrr"))
	}))
	failed := make(chan error, 4)
	sink := &verifyingSink{info: ci, held: map[string]map[uint32][]byte{}}
	p := &Puller{Client: &retrieval.Client{Timeout: time.Second}, Sink: sink, Backoff: 10 * time.Millisecond, Observer: failObserver(failed)}
	startPuller(t, p)
	down := netip.MustParseAddrPort("127.0.0.1:1") // nothing listens there
	p.Enqueue(down, ci.ID(0), "Other")
	if err := <-failed; err == nil {
		t.Fatal("no error from a peer that is down")
	}
	p.Enqueue(garbage, ci.ID(0), "Other")
	<-failed
	if calls.Load() != 1 {
		t.Errorf("garbage peer asked %d times, want 1", calls.Load())
	}
	if sink.puts.Load() != 0 {
		t.Errorf("%d blocks reached the store", sink.puts.Load())
	}
}

type failObserver chan error

func (f failObserver) Pulled([]byte, string, int, int) {}
func (f failObserver) PullFailed(_ []byte, _ string, _ netip.AddrPort, err error) {
	f <- err
}
