package preload

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outpost-appliance/outpost/cache/retrieval"
	"github.com/outpost-appliance/outpost/cache/store"
	"github.com/outpost-appliance/outpost/peerdist/pccrc"
	"github.com/outpost-appliance/outpost/peerdist/pccrr"
	"github.com/outpost-appliance/outpost/peerdist/pccrtp"
)

var testSecret = pccrc.PassphraseSecret("branch office secret")

// testOrigin is a small BranchCache-enabled web server: it answers
// PeerDist requests with content information made by pccrc and serves
// the bytes with Range support (net/http's ServeContent), and can be told
// to misbehave the ways real origins do.
type testOrigin struct {
	t      testing.TB
	secret []byte

	mu    sync.Mutex
	files map[string][]byte
	ci    map[string][]byte // path and version → wire content information
	// misbehaviour
	plain       bool // no BranchCache: always the content
	noV2        bool // content information 1.0 only (Windows Server 2008 R2)
	makeHash    int  // answer this many PeerDist requests with MakeHashRequest
	corrupt     bool // flip a bit in every data response
	ignoreRange bool // send the whole content to range requests
	// gate, when set, stops a data response after gateAfter bytes until
	// it is closed.
	gate      chan struct{}
	gateAfter int64
	// inflight counts the requests being answered.
	inflight sync.WaitGroup
	// onCI is called after a content-information answer.
	onCI func(path string)
	// figures
	dataBytes   int64 // content bytes written in answer to data requests
	timeline    []progressSample
	ciRequests  int
	hashRequest int // PeerDist requests with HashRequest=true
	ranges      []string
	headers     []http.Header
}

func newTestOrigin(t testing.TB) *testOrigin {
	return &testOrigin{t: t, secret: testSecret, files: map[string][]byte{}, ci: map[string][]byte{}}
}

// add puts a file of size random bytes at path and returns them.
func (o *testOrigin) add(path string, size int, seed byte) []byte {
	data := make([]byte, size)
	rand.NewChaCha8([32]byte{seed, byte(size), byte(size >> 8), byte(size >> 16)}).Read(data)
	o.set(path, data)
	return data
}

func (o *testOrigin) set(path string, data []byte) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.files[path] = data
	for k := range o.ci {
		if strings.HasPrefix(k, path+"#") {
			delete(o.ci, k)
		}
	}
}

// info returns the content information the origin sends for a version.
func (o *testOrigin) info(path string, v int) *pccrc.Info {
	raw := o.ciBytes(path, v)
	ci, err := pccrc.Parse(raw)
	if err != nil {
		o.t.Fatal(err)
	}
	return ci
}

func (o *testOrigin) ciBytes(path string, v int) []byte {
	o.mu.Lock()
	defer o.mu.Unlock()
	key := fmt.Sprintf("%s#%d", path, v)
	if raw, ok := o.ci[key]; ok {
		return raw
	}
	data := o.files[path]
	var ci *pccrc.Info
	var err error
	if v == 1 {
		ci, err = pccrc.GenerateV1(context.Background(), bytes.NewReader(data), pccrc.SHA256, o.secret)
	} else {
		ci, err = pccrc.GenerateV2(context.Background(), bytes.NewReader(data), o.secret)
	}
	if err != nil {
		o.t.Fatal(err)
	}
	raw, err := ci.MarshalBinary()
	if err != nil {
		o.t.Fatal(err)
	}
	o.ci[key] = raw
	return raw
}

func (o *testOrigin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	o.inflight.Add(1)
	defer o.inflight.Done()
	o.mu.Lock()
	data, ok := o.files[r.URL.Path]
	o.headers = append(o.headers, r.Header.Clone())
	plain, noV2, corrupt, ignoreRange, gate, gateAfter := o.plain, o.noV2, o.corrupt, o.ignoreRange, o.gate, o.gateAfter
	o.mu.Unlock()
	if !ok {
		http.NotFound(w, r)
		return
	}
	sum := sha256.Sum256(data)
	etag := `"` + hex.EncodeToString(sum[:8]) + `"`
	w.Header().Set("ETag", etag)
	modified := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	n := pccrtp.Negotiate(r.Header)
	if n.UsePeerDist && !plain && !(noV2 && n.ContentInformation == 2) {
		o.mu.Lock()
		o.ciRequests++
		if n.HashRequest {
			o.hashRequest++
		}
		pending := o.makeHash > 0
		if pending {
			o.makeHash--
		}
		onCI := o.onCI
		o.mu.Unlock()
		if !pending {
			raw := o.ciBytes(r.URL.Path, n.ContentInformation)
			n.SetResponseHeaders(w.Header(), int64(len(data)))
			w.Header().Set("Content-Length", fmt.Sprint(len(raw)))
			w.Write(raw)
			if onCI != nil {
				onCI(r.URL.Path)
			}
			return
		}
		pccrtp.SetHashesPending(w.Header())
	}
	cw := &countingWriter{ResponseWriter: w, o: o, corrupt: corrupt, gate: gate, gateAfter: gateAfter}
	o.mu.Lock()
	o.ranges = append(o.ranges, r.Header.Get("Range"))
	o.mu.Unlock()
	if ignoreRange {
		w.Header().Set("Content-Length", fmt.Sprint(len(data)))
		cw.Write(data)
		return
	}
	http.ServeContent(cw, r, "", modified, bytes.NewReader(data))
}

// countingWriter counts the content bytes an origin sends, and corrupts
// or holds them when told to.
type countingWriter struct {
	http.ResponseWriter
	o         *testOrigin
	corrupt   bool
	gate      chan struct{}
	gateAfter int64
	written   int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	if c.gate != nil && c.written+int64(len(p)) > c.gateAfter {
		head := max(0, c.gateAfter-c.written)
		n, err := c.write(p[:head])
		if err != nil {
			return n, err
		}
		if f, ok := c.ResponseWriter.(http.Flusher); ok {
			f.Flush()
		}
		<-c.gate
		m, err := c.write(p[head:])
		return n + m, err
	}
	return c.write(p)
}

func (c *countingWriter) write(p []byte) (int, error) {
	if c.corrupt && len(p) > 0 {
		p = bytes.Clone(p)
		for i := 0; i < len(p); i += 4096 {
			p[i] ^= 0x55
		}
	}
	n, err := c.ResponseWriter.Write(p)
	c.written += int64(n)
	now := time.Now()
	c.o.mu.Lock()
	c.o.dataBytes += int64(n)
	c.o.timeline = append(c.o.timeline, progressSample{now, c.o.dataBytes})
	c.o.mu.Unlock()
	return n, err
}

// progressSample is how many content bytes an origin had sent by a time.
type progressSample struct {
	at    time.Time
	bytes int64
}

func (o *testOrigin) served() int64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.dataBytes
}

func (o *testOrigin) resetCounts() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.dataBytes, o.ciRequests, o.ranges, o.headers, o.timeline = 0, 0, nil, nil, nil
}

func (o *testOrigin) start(t testing.TB) *httptest.Server {
	srv := httptest.NewServer(o)
	t.Cleanup(srv.Close)
	return srv
}

func testLogger(t testing.TB) *slog.Logger {
	level := slog.LevelWarn
	if os.Getenv("PRELOAD_DEBUG") != "" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: level}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

func openStore(t testing.TB, dir string) *store.Store {
	t.Helper()
	opts := store.DefaultOptions(dir)
	opts.Logger = testLogger(t)
	st, err := store.Open(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// checkStored reads every unit of ci back from the store, decrypts it and
// compares it with data: what a client would get from the hosted cache.
func checkStored(t testing.TB, st *store.Store, ci *pccrc.Info, data []byte) {
	t.Helper()
	ctx := context.Background()
	buf := make([]byte, 256<<10)
	for i := range ci.Segments {
		seg := &ci.Segments[i]
		n := 1
		if ci.Version == pccrc.V1 {
			n = pccrc.BlockCount(seg.Size)
		}
		for b := range n {
			blk, err := st.ReadBlock(ctx, ci.ID(i), uint32(b), buf)
			if err != nil {
				t.Fatalf("V%d segment %d block %d: %v", ci.Version, i, b, err)
			}
			plain, err := retrieval.Plaintext(ci.Algo, seg, uint32(b), &pccrr.Blk{Crypto: blk.Crypto, IV: blk.IV, Block: blk.Ciphertext})
			if err != nil {
				t.Fatalf("V%d segment %d block %d: %v", ci.Version, i, b, err)
			}
			off := seg.Offset
			if ci.Version == pccrc.V1 {
				o, _ := pccrc.BlockSpan(seg.Size, b)
				off += uint64(o)
			}
			if !bytes.Equal(plain, data[off:off+uint64(len(plain))]) {
				t.Fatalf("V%d segment %d block %d: stored bytes differ from the content", ci.Version, i, b)
			}
		}
	}
}

// heldBytes sums the content bytes of ci's units the store holds.
func heldBytes(t testing.TB, st Store, ci *pccrc.Info) uint64 {
	t.Helper()
	c := newContent(ci)
	_, tal, err := plan(context.Background(), readOnly{st}, []*content{c})
	if err != nil {
		t.Fatal(err)
	}
	return tal.heldBytes
}

// readOnly refuses to change the store (plan must not, for a check).
type readOnly struct{ Store }

func (readOnly) AddSegmentInfo(context.Context, pccrc.Version, pccrc.HashAlgo, pccrc.Segment, []byte) ([]byte, error) {
	return nil, fmt.Errorf("read-only")
}

// fakeClock is a Clock moved by hand: After fires when Advance passes its
// deadline.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []fakeWaiter
}

type fakeWaiter struct {
	at time.Time
	ch chan time.Time
}

func newFakeClock(now time.Time) *fakeClock { return &fakeClock{now: now} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	c.waiters = append(c.waiters, fakeWaiter{c.now.Add(d), ch})
	return ch
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	c.now = t
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if !w.at.After(t) {
			w.ch <- t
			continue
		}
		kept = append(kept, w)
	}
	c.waiters = kept
	c.mu.Unlock()
}

// recorder is an Observer that keeps what it was told.
type recorder struct {
	mu     sync.Mutex
	events []string
}

func (r *recorder) add(format string, args ...any) {
	r.mu.Lock()
	r.events = append(r.events, fmt.Sprintf(format, args...))
	r.mu.Unlock()
}

func (r *recorder) PreloadStarted(j Job)   { r.add("started %s", j.ID) }
func (r *recorder) PreloadCompleted(j Job) { r.add("completed %s", j.ID) }
func (r *recorder) PreloadFailed(j Job, final bool) {
	r.add("failed %s final=%v", j.ID, final)
}
func (r *recorder) PreloadPaused(j Job)              { r.add("paused %s", j.ID) }
func (r *recorder) PreloadCancelled(j Job)           { r.add("cancelled %s", j.ID) }
func (r *recorder) InjectCompleted(res InjectResult) { r.add("inject-completed %s", res.Name) }
func (r *recorder) InjectRefused(name string, err error) {
	r.add("inject-refused %s", name)
}

func (r *recorder) list() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.events...)
}

// runService starts s and stops it at the end of the test.
func runService(t testing.TB, s *Service) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	ready := make(chan struct{})
	go func() { done <- s.Run(ctx, func() { close(ready) }) }()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("preload service: %v", err)
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("preload service: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// waitJob waits until the job is in a state for which until is true.
func waitJob(t testing.TB, s *Service, id string, until func(Job) bool) Job {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		j, err := s.Job(id)
		if err != nil {
			t.Fatal(err)
		}
		if until(j) {
			return j
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s still %s: %+v", id, j.State, j)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func finished(j Job) bool { return j.State.Finished() }
