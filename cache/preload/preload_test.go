package preload

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/outpost-appliance/outpost/cache/preload/bandwidth"
	"github.com/outpost-appliance/outpost/cache/preload/window"
	"github.com/outpost-appliance/outpost/cache/store"
	"github.com/outpost-appliance/outpost/peerdist/pccrc"
)

// newService is a service over a fresh store with fast retries.
func newService(t *testing.T, st *store.Store, tune func(*Options)) (*Service, *recorder) {
	t.Helper()
	rec := &recorder{}
	opts := Options{
		StateFile: t.TempDir() + "/preload.json",
		Store:     func() Store { return st },
		RetryMin:  time.Millisecond, RetryMax: 5 * time.Millisecond,
		Observer: rec, Logger: testLogger(t),
	}
	if tune != nil {
		tune(&opts)
	}
	return New(opts), rec
}

func addJob(t *testing.T, s *Service, spec Spec) Job {
	t.Helper()
	j, added, err := s.Add(spec)
	if err != nil || !added {
		t.Fatalf("add %+v: %v (added %v)", spec, err, added)
	}
	return j
}

// V1 and V2, content of several segments (V1: over 32 MiB), alone and
// together: every unit is stored verified, the bytes come back equal,
// and each byte crossed the WAN once even for both versions.
func TestPreloadVersions(t *testing.T) {
	origin := newTestOrigin(t)
	big := origin.add("/big.wim", 32<<20+3*65536+1234, 1) // 2 V1 segments, ~300 V2 segments
	small := origin.add("/small.msu", 3*65536+17, 2)      // 1 V1 segment of 4 blocks
	srv := origin.start(t)
	tests := []struct {
		path     string
		data     []byte
		versions []int
	}{
		{"/small.msu", small, []int{1}},
		{"/small.msu", small, []int{2}},
		{"/big.wim", big, []int{1, 2}},
	}
	for _, tt := range tests {
		t.Run(strings.TrimPrefix(tt.path, "/")+"/V"+strings.ReplaceAll(fmtInts(tt.versions), " ", "+"), func(t *testing.T) {
			st := openStore(t, t.TempDir())
			defer st.Close()
			s, rec := newService(t, st, nil)
			runService(t, s)
			origin.resetCounts()
			j := addJob(t, s, Spec{URL: srv.URL + tt.path, Versions: tt.versions})
			j = waitJob(t, s, j.ID, finished)
			if j.State != Completed {
				t.Fatalf("job %s: %s", j.State, j.Error)
			}
			for _, v := range tt.versions {
				ci := origin.info(tt.path, v)
				if v == 1 && len(ci.Segments) < 2 && len(tt.data) > pccrc.SegmentSizeV1 {
					t.Fatalf("V1 content of %d bytes in %d segments", len(tt.data), len(ci.Segments))
				}
				checkStored(t, st, ci, tt.data)
			}
			size := uint64(len(tt.data))
			if j.Size != size || j.Bytes != size*uint64(len(tt.versions)) || j.BytesHeld != j.Bytes || j.Progress != 1 || j.BlocksHeld != j.Blocks {
				t.Errorf("job figures: %+v", j)
			}
			if got := origin.served(); got != int64(size) || j.FetchedBytes < size {
				t.Errorf("the origin served %d content bytes (job counted %d) for %d bytes of content", got, j.FetchedBytes, size)
			}
			if ev := rec.list(); len(ev) != 2 || ev[0] != "started "+j.ID || ev[1] != "completed "+j.ID {
				t.Errorf("events %v", ev)
			}
			// The request a Windows client of each version sends.
			for _, h := range origin.headers {
				if h.Get("Accept-Encoding") == "peerdist" {
					pd, ex := h.Get("X-P2p-Peerdist"), h.Get("X-P2p-Peerdistex")
					if !(pd == "Version=1.0" && ex == "") && !(pd == "Version=1.1" && ex == "MinContentInformation=2.0, MaxContentInformation=2.0") {
						t.Errorf("content information request: X-P2P-PeerDist %q, X-P2P-PeerDistEx %q", pd, ex)
					}
				} else if h.Get("Range") == "" || h.Get("Accept-Encoding") != "identity" || h.Get("If-Range") == "" {
					t.Errorf("data request without Range, identity or If-Range: %v", h)
				}
			}

			// Again: everything is held, nothing is fetched but the
			// content information.
			origin.resetCounts()
			if _, err := s.Cancel(j.ID); !errors.Is(err, ErrFinished) {
				t.Errorf("cancel a finished job: %v", err)
			}
			again := addJob(t, s, Spec{URL: srv.URL + tt.path, Versions: tt.versions})
			again = waitJob(t, s, again.ID, finished)
			if again.State != Completed || origin.served() != 0 || again.BlocksHeld != again.Blocks {
				t.Errorf("second run: %s, %d bytes served: %+v", again.State, origin.served(), again)
			}
		})
	}
}

func fmtInts(v []int) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = string(rune('0' + x))
	}
	return strings.Join(s, " ")
}

// Only the blocks the store lacks are fetched: blocks held before (by
// another way in) are skipped, and the Range requests are exactly the
// gaps.
func TestPreloadFetchesOnlyMissingBlocks(t *testing.T) {
	origin := newTestOrigin(t)
	data := origin.add("/f", 40*65536+100, 3)
	srv := origin.start(t)
	st := openStore(t, t.TempDir())
	defer st.Close()
	ci := origin.info("/f", 1)
	ctx := context.Background()
	// Hold blocks 0-9 and 20-29 already.
	id, err := st.AddSegmentInfo(ctx, pccrc.V1, ci.Algo, ci.Segments[0], nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29} {
		if _, err := st.PutPlainBlock(ctx, id, uint32(b), data[b*65536:(b+1)*65536]); err != nil {
			t.Fatal(err)
		}
	}
	s, _ := newService(t, st, nil)
	runService(t, s)
	j := addJob(t, s, Spec{URL: srv.URL + "/f", Versions: []int{1}})
	j = waitJob(t, s, j.ID, finished)
	if j.State != Completed {
		t.Fatalf("%s: %s", j.State, j.Error)
	}
	want := []string{"bytes=655360-1310719", "bytes=1966080-2621539"}
	if strings.Join(origin.ranges, " ") != strings.Join(want, " ") {
		t.Errorf("ranges %q, want %q", origin.ranges, want)
	}
	if got := origin.served(); got != int64(len(data)-20*65536) {
		t.Errorf("served %d bytes, %d were missing", got, len(data)-20*65536)
	}
	checkStored(t, st, ci, data)
}

// An origin whose data does not match its content information: nothing
// is stored, the job fails naming the block.
func TestPreloadCorruptOrigin(t *testing.T) {
	origin := newTestOrigin(t)
	origin.add("/f", 5*65536, 4)
	origin.corrupt = true
	srv := origin.start(t)
	st := openStore(t, t.TempDir())
	defer st.Close()
	s, rec := newService(t, st, func(o *Options) { o.MaxAttempts = 2 })
	runService(t, s)
	for _, v := range []int{1, 2} {
		j := addJob(t, s, Spec{URL: srv.URL + "/f", Versions: []int{v}})
		j = waitJob(t, s, j.ID, finished)
		if j.State != Failed || j.Attempts != 2 || !strings.Contains(j.Error, "does not match its content information") {
			t.Fatalf("V%d: %s after %d attempts: %q", v, j.State, j.Attempts, j.Error)
		}
		if held := heldBytes(t, st, origin.info("/f", v)); held != 0 {
			t.Errorf("V%d: %d bytes of corrupt data stored", v, held)
		}
	}
	ev := strings.Join(rec.list(), "\n")
	if !strings.Contains(ev, "final=false") || !strings.Contains(ev, "final=true") {
		t.Errorf("events:\n%s", ev)
	}
}

// An origin without BranchCache answers the content itself: the job
// fails with an error that says so, and the content is not downloaded.
func TestPreloadPlainOrigin(t *testing.T) {
	origin := newTestOrigin(t)
	origin.add("/f", 8<<20, 5)
	origin.plain = true
	srv := origin.start(t)
	st := openStore(t, t.TempDir())
	defer st.Close()
	s, _ := newService(t, st, nil)
	runService(t, s)
	j := addJob(t, s, Spec{URL: srv.URL + "/f"})
	j = waitJob(t, s, j.ID, finished)
	if j.State != Failed || j.Attempts != notBranchCacheAttempts || !strings.Contains(j.Error, "BranchCache is not enabled") || !strings.Contains(j.Error, "versions = [1]") {
		t.Fatalf("%s after %d attempts: %q", j.State, j.Attempts, j.Error)
	}
	if j.FetchedBytes != 0 {
		t.Errorf("%d bytes of the content read", j.FetchedBytes)
	}

	// A 404 is permanent: one attempt.
	j = addJob(t, s, Spec{URL: srv.URL + "/nothing"})
	j = waitJob(t, s, j.ID, finished)
	if j.State != Failed || j.Attempts != 1 || !strings.Contains(j.Error, "404") {
		t.Fatalf("404: %s after %d: %q", j.State, j.Attempts, j.Error)
	}
}

// A Windows Server 2008 R2 origin has no content information 2.0.
func TestPreloadV1OnlyOrigin(t *testing.T) {
	origin := newTestOrigin(t)
	data := origin.add("/f", 100_000, 6)
	origin.noV2 = true
	srv := origin.start(t)
	st := openStore(t, t.TempDir())
	defer st.Close()
	s, _ := newService(t, st, func(o *Options) { o.MaxAttempts = 1; o.Versions = []int{1} })
	runService(t, s)
	j := addJob(t, s, Spec{URL: srv.URL + "/f"}) // the service's default versions: [1]
	j = waitJob(t, s, j.ID, finished)
	if j.State != Completed || len(j.Versions) != 1 || j.Versions[0] != 1 {
		t.Fatalf("%s: %q %v", j.State, j.Error, j.Versions)
	}
	checkStored(t, st, origin.info("/f", 1), data)
}

// IIS answers "MakeHashRequest" while it hashes: the job asks again with
// HashRequest=true and completes.
func TestPreloadHashesPending(t *testing.T) {
	origin := newTestOrigin(t)
	data := origin.add("/f", 300_000, 7)
	origin.makeHash = 2
	srv := origin.start(t)
	st := openStore(t, t.TempDir())
	defer st.Close()
	s, _ := newService(t, st, nil)
	runService(t, s)
	j := addJob(t, s, Spec{URL: srv.URL + "/f"})
	j = waitJob(t, s, j.ID, finished)
	if j.State != Completed || origin.hashRequest < 1 {
		t.Fatalf("%s (%q); %d requests with HashRequest", j.State, j.Error, origin.hashRequest)
	}
	checkStored(t, st, origin.info("/f", 2), data)
}

// An origin that ignores Range sends the whole content: one pass takes
// every missing block from it.
func TestPreloadOriginIgnoresRange(t *testing.T) {
	origin := newTestOrigin(t)
	data := origin.add("/f", 20*65536+5, 8)
	origin.ignoreRange = true
	srv := origin.start(t)
	st := openStore(t, t.TempDir())
	defer st.Close()
	ci := origin.info("/f", 1)
	id, _ := st.AddSegmentInfo(context.Background(), pccrc.V1, ci.Algo, ci.Segments[0], nil)
	st.PutPlainBlock(context.Background(), id, 3, data[3*65536:4*65536]) // a gap: two ranges
	s, _ := newService(t, st, nil)
	runService(t, s)
	j := addJob(t, s, Spec{URL: srv.URL + "/f", Versions: []int{1, 2}})
	j = waitJob(t, s, j.ID, finished)
	if j.State != Completed || len(origin.ranges) != 1 {
		t.Fatalf("%s (%q), %d data requests", j.State, j.Error, len(origin.ranges))
	}
	checkStored(t, st, ci, data)
	checkStored(t, st, origin.info("/f", 2), data)
}

// The content changes between its content information and its bytes
// (another ETag): If-Range gets the new content, the job starts over with
// the new content information and stores the new content.
func TestPreloadContentChanges(t *testing.T) {
	origin := newTestOrigin(t)
	origin.add("/f", 10*65536, 9)
	newData := make([]byte, 12*65536)
	copy(newData, "a new version")
	changed := false
	origin.onCI = func(string) {
		if !changed {
			changed = true
			origin.set("/f", newData) // the answer is on its way with the old one
		}
	}
	srv := origin.start(t)
	st := openStore(t, t.TempDir())
	defer st.Close()
	s, _ := newService(t, st, nil)
	runService(t, s)
	j := addJob(t, s, Spec{URL: srv.URL + "/f"})
	j = waitJob(t, s, j.ID, finished)
	if j.State != Completed || j.Size != uint64(len(newData)) {
		t.Fatalf("%s (%q), size %d", j.State, j.Error, j.Size)
	}
	checkStored(t, st, origin.info("/f", 2), newData)
}

// Schedule windows with an injected clock: a job waits for its window,
// runs inside it, pauses when it closes mid-way and resumes when it
// opens again.
func TestPreloadWindow(t *testing.T) {
	origin := newTestOrigin(t)
	data := origin.add("/f", 30*65536, 10)
	gate := make(chan struct{})
	origin.gate, origin.gateAfter = gate, 10*65536
	srv := origin.start(t)
	st := openStore(t, t.TempDir())
	defer st.Close()
	clock := newFakeClock(time.Date(2026, 3, 1, 0, 30, 0, 0, time.UTC))
	s, rec := newService(t, st, func(o *Options) { o.Clock = clock })
	runService(t, s)
	// Moving the fake clock races with the loop arming its timer from the
	// time before: nudge the loop, as time moving on would.
	setClock := func(t time.Time) { clock.Set(t); s.poke() }
	w, _ := window.Parse("01:00-05:00 UTC")
	j := addJob(t, s, Spec{URL: srv.URL + "/f", Versions: []int{1}, Window: w})
	j = waitJob(t, s, j.ID, func(j Job) bool { return j.State == Paused })
	if want := time.Date(2026, 3, 1, 1, 0, 0, 0, time.UTC); !j.Next.Equal(want) {
		t.Errorf("paused until %v, want %v", j.Next, want)
	}
	// The window opens: it runs until the origin holds back.
	setClock(time.Date(2026, 3, 1, 1, 0, 0, 0, time.UTC))
	waitJob(t, s, j.ID, func(j Job) bool { return j.State == Running && j.BlocksHeld >= 10 })
	// It closes: the job pauses until tomorrow's opening.
	setClock(time.Date(2026, 3, 1, 5, 0, 0, 0, time.UTC))
	close(gate)
	j = waitJob(t, s, j.ID, func(j Job) bool { return j.State == Paused })
	if want := time.Date(2026, 3, 2, 1, 0, 0, 0, time.UTC); !j.Next.Equal(want) {
		t.Errorf("paused until %v, want %v", j.Next, want)
	}
	held := j.BytesHeld
	if held == 0 || held >= uint64(len(data)) {
		t.Errorf("held %d of %d bytes when paused", held, len(data))
	}
	origin.inflight.Wait() // the interrupted answer is over
	origin.resetCounts()
	setClock(time.Date(2026, 3, 2, 1, 0, 0, 0, time.UTC))
	j = waitJob(t, s, j.ID, finished)
	if j.State != Completed {
		t.Fatalf("%s: %s", j.State, j.Error)
	}
	if got := uint64(origin.served()); got != uint64(len(data))-held {
		t.Errorf("after the pause %d bytes were fetched; %d were missing", got, uint64(len(data))-held)
	}
	checkStored(t, st, origin.info("/f", 1), data)
	want := []string{"paused " + j.ID, "started " + j.ID, "paused " + j.ID, "started " + j.ID, "completed " + j.ID}
	if got := rec.list(); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("events %v, want %v", got, want)
	}
}

// The limit is a token bucket on the job's reads: with a fake clock the
// job's own figures do not move, so this only checks that limits reach
// the job and the total (the rate itself is measured over a real link in
// TestBandwidthLimitOverVeth).
func TestPreloadLimitsApply(t *testing.T) {
	origin := newTestOrigin(t)
	origin.add("/f", 4*65536, 11)
	srv := origin.start(t)
	st := openStore(t, t.TempDir())
	defer st.Close()
	s, _ := newService(t, st, func(o *Options) { o.Limit = 800_000_000 })
	runService(t, s)
	j := addJob(t, s, Spec{URL: srv.URL + "/f", Limit: 400_000_000})
	j = waitJob(t, s, j.ID, finished)
	if j.State != Completed || j.Limit != 400_000_000 || s.Limit() != bandwidth.Rate(800_000_000) {
		t.Fatalf("%+v", j)
	}
}

// Specs are checked before a job is queued, and a second request for a
// job that is not finished returns it.
func TestAddValidates(t *testing.T) {
	st := openStore(t, t.TempDir())
	defer st.Close()
	s, _ := newService(t, st, nil)
	if _, _, err := s.Add(Spec{URL: "http://x/f"}); !errors.Is(err, ErrNotRunning) {
		t.Errorf("add before Run: %v", err)
	}
	runService(t, s)
	for _, bad := range []Spec{
		{URL: "ftp://x/f"}, {URL: "x/f"}, {URL: "http:///f"}, {URL: "http://u:p@x/f"},
		{URL: "http://x/f", Versions: []int{3}}, {URL: "http://x/f", Versions: []int{2, 2}},
	} {
		if _, _, err := s.Add(bad); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
	w, _ := window.Parse("01:00-02:00 UTC")
	a, added, err := s.Add(Spec{URL: "http://192.0.2.1/f", Window: w})
	if err != nil || !added {
		t.Fatal(err)
	}
	b, added, err := s.Add(Spec{URL: "http://192.0.2.1/f"})
	if err != nil || added || b.ID != a.ID {
		t.Errorf("the same URL again: %v, added %v, %s vs %s", err, added, b.ID, a.ID)
	}
	if _, err := s.Job("nope"); !errors.Is(err, ErrNoJob) {
		t.Error(err)
	}
	c, err := s.Cancel(a.ID)
	if err != nil || c.State != Cancelled {
		t.Errorf("cancel: %v %+v", err, c)
	}
}

// Jobs survive a restart of the service: API jobs keep their state,
// configured ones follow the configuration.
func TestStatePersists(t *testing.T) {
	st := openStore(t, t.TempDir())
	defer st.Close()
	dir := t.TempDir()
	opts := func(entries ...Spec) func(*Options) {
		return func(o *Options) {
			o.StateFile = dir + "/preload.json"
			o.Entries = entries
			o.Store = func() Store { return nil }
		}
	}
	w, _ := window.Parse("01:00-05:00")
	s, _ := newService(t, st, opts(Spec{URL: "http://192.0.2.1/a", Window: w}, Spec{URL: "http://192.0.2.1/b", Versions: []int{1, 2}}))
	stop := runService(t, s)
	api := addJob(t, s, Spec{URL: "http://192.0.2.1/c", Limit: 20_000_000})
	jobs := s.Jobs()
	if len(jobs) != 3 || jobs[0].ID != api.ID || jobs[1].Source != SourceConfig || jobs[2].Versions[0] != 1 {
		t.Fatalf("jobs %+v", jobs)
	}
	cfgA := jobs[1].ID
	stop()

	// Restarted with entry b gone and a's window changed.
	w2, _ := window.Parse("02:00-03:00")
	s2, _ := newService(t, st, opts(Spec{URL: "http://192.0.2.1/a", Window: w2}))
	runService(t, s2)
	jobs = s2.Jobs()
	if len(jobs) != 2 || jobs[0].ID != api.ID || jobs[0].Limit != 20_000_000 || jobs[1].ID != cfgA || !jobs[1].Window.Equal(w2) {
		t.Fatalf("after restart: %+v", jobs)
	}
}

// A job interrupted by a stop of the service is queued again, not
// counted as a failure, and the next start resumes it.
func TestPreloadResumesAfterStop(t *testing.T) {
	origin := newTestOrigin(t)
	data := origin.add("/f", 40*65536, 14)
	gate := make(chan struct{})
	origin.gate, origin.gateAfter = gate, 15*65536
	srv := origin.start(t)
	st := openStore(t, t.TempDir())
	defer st.Close()
	state := t.TempDir() + "/preload.json"
	s, rec := newService(t, st, func(o *Options) { o.StateFile = state })
	stop := runService(t, s)
	j := addJob(t, s, Spec{URL: srv.URL + "/f", Versions: []int{1}})
	waitJob(t, s, j.ID, func(j Job) bool { return j.BlocksHeld >= 15 })
	stop()
	close(gate)
	origin.inflight.Wait() // the interrupted answer is over
	j, _ = s.Job(j.ID)
	if j.State != Queued || j.Attempts != 0 || j.Error != "" {
		t.Fatalf("after the stop: %+v", j)
	}
	if ev := rec.list(); len(ev) != 1 {
		t.Errorf("events %v", ev)
	}
	origin.resetCounts()
	held := heldBytes(t, st, origin.info("/f", 1))
	s2, _ := newService(t, st, func(o *Options) { o.StateFile = state })
	runService(t, s2)
	j = waitJob(t, s2, j.ID, finished)
	if j.State != Completed || uint64(origin.served()) != uint64(len(data))-held {
		t.Fatalf("%s (%s): fetched %d, %d were missing", j.State, j.Error, origin.served(), uint64(len(data))-held)
	}
	checkStored(t, st, origin.info("/f", 1), data)
}
