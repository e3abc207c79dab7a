package watch

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/outpost-appliance/outpost/cache/hostedcache"
	"github.com/outpost-appliance/outpost/cache/store"
	"github.com/outpost-appliance/outpost/firmware/events"
	"github.com/outpost-appliance/outpost/firmware/report"
	"github.com/outpost-appliance/outpost/firmware/supervise"
	"github.com/outpost-appliance/outpost/peerdist/pccrc"
	"github.com/outpost-appliance/outpost/peerdist/pccrr"
)

var quiet = slog.New(slog.DiscardHandler)

var _ hostedcache.PullObserver = PullEvents{}

func newLog(t *testing.T) *events.Log {
	t.Helper()
	l, err := events.Open(events.Options{Logger: quiet, Burst: 1000})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// start runs the watch service until the test ends.
func start(t *testing.T, opts Options) {
	t.Helper()
	opts.Interval, opts.EvictionSummary, opts.Logger = 10*time.Millisecond, 30*time.Millisecond, quiet
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { Service(opts).Run(ctx, func() {}); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

// waitFor polls the log until want holds.
func waitFor(t *testing.T, l *events.Log, what string, want func([]events.Event) bool) []events.Event {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		evs := l.Query(events.Query{Limit: 1000}).Events
		if want(evs) {
			return evs
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: events %+v", what, evs)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func count(evs []events.Event, id events.ID) int {
	n := 0
	for _, e := range evs {
		if e.ID == id {
			n++
		}
	}
	return n
}

// fakeSupervisor plays a list of snapshots, one per look.
type fakeSupervisor struct {
	mu    sync.Mutex
	steps [][]supervise.Status
}

func (f *fakeSupervisor) Snapshot() []supervise.Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.steps[0]
	if len(f.steps) > 1 {
		f.steps = f.steps[1:]
	}
	return s
}

func TestServiceFailuresAndRecovery(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	running := supervise.Status{Name: "hosted-cache", State: supervise.Running, Since: t0}
	fail1 := supervise.Status{Name: "hosted-cache", State: supervise.BackingOff, LastError: "listen tcp :443: address in use\nmore", LastErrorAt: t0.Add(time.Second), Restarts: 1}
	fail2 := fail1
	fail2.LastErrorAt, fail2.Restarts = t0.Add(3*time.Second), 2
	back := supervise.Status{Name: "hosted-cache", State: supervise.Running, Since: t0.Add(10 * time.Second), LastError: fail2.LastError, LastErrorAt: fail2.LastErrorAt, Restarts: 2}
	sup := &fakeSupervisor{steps: [][]supervise.Status{{running}, {fail1}, {fail1}, {fail2}, {back}, {back}}}
	l := newLog(t)
	start(t, Options{Events: l, Supervisor: sup})
	evs := waitFor(t, l, "a recovery", func(evs []events.Event) bool { return count(evs, events.ServiceRecovered) > 0 })
	time.Sleep(50 * time.Millisecond)
	evs = l.Query(events.Query{}).Events
	if count(evs, events.ServiceFailed) != 2 || count(evs, events.ServiceRecovered) != 1 {
		t.Fatalf("events %+v", evs)
	}
	failed := evs[len(evs)-1]
	if failed.Fields["service"] != "hosted-cache" || failed.Fields["error"] != "listen tcp :443: address in use" || failed.Fields["state"] != "backing off" {
		t.Errorf("failure event %+v", failed)
	}
	if evs[0].ID != events.ServiceRecovered || evs[0].Fields["down_for"] != "9s" {
		t.Errorf("recovery event %+v", evs[0])
	}
}

func TestPullFailureCounts(t *testing.T) {
	var failures atomic.Uint64
	failures.Store(5) // before the watch started: not news
	tags := func() map[string]hostedcache.TagCounters {
		return map[string]hostedcache.TagCounters{"BITS-4.0": {PullFailures: failures.Load()}, "WinINet": {}}
	}
	l := newLog(t)
	start(t, Options{Events: l, TagStats: tags})
	time.Sleep(30 * time.Millisecond)
	failures.Add(3)
	evs := waitFor(t, l, "pull failures", func(evs []events.Event) bool { return count(evs, events.PullFailed) > 0 })
	if len(evs) != 1 || evs[0].Fields["tag"] != "BITS-4.0" || evs[0].Fields["count"] != uint64(3) {
		t.Errorf("events %+v", evs)
	}
}

func TestPullEvents(t *testing.T) {
	l := newLog(t)
	p := PullEvents{Events: l}
	peer := netip.MustParseAddrPort("192.0.2.9:1337")
	p.PullFailed([]byte{0xab, 0xcd}, "BITS-4.0", peer, errors.New("dial tcp: connection refused"))
	p.PullFailed([]byte{0xab, 0xcd}, "BITS-4.0", peer, fmt.Errorf("store: put: %w", store.ErrVerify))
	evs := l.Query(events.Query{}).Events
	if len(evs) != 2 || evs[0].ID != events.VerificationFailed || evs[1].ID != events.PullFailed ||
		evs[1].Fields["segment"] != "abcd" || evs[1].Fields["peer"] != "192.0.2.9:1337" {
		t.Errorf("events %+v", evs)
	}
}

// replay ingests a V2 segment kept for replay (no hashes), as a
// BATCHED_OFFER and one pulled block make it.
func replay(t *testing.T, st *store.Store, seed uint64) {
	t.Helper()
	id := sha256.Sum256(binary.LittleEndian.AppendUint64(nil, seed))
	ctx := context.Background()
	const size = 60_000
	if err := st.AddOffer(ctx, store.SegmentOffer{SegmentID: id[:], Version: pccrc.V2, Size: size, ContentTag: []byte("BITS-4.0")}); err != nil {
		t.Fatal(err)
	}
	ct := make([]byte, (size+15)/16*16)
	ct[0] = byte(seed)
	if _, err := st.PutBlock(ctx, id[:], 0, store.Block{Crypto: pccrr.CryptoAES128, IV: make([]byte, 16), Ciphertext: ct}); err != nil {
		t.Fatal(err)
	}
	if err := st.Sync(ctx); err != nil {
		t.Fatal(err)
	}
}

// The store's evictions (from its change feed, summed) and a disk that
// falls below the floor are events.
func TestStoreEvictionsAndLowDisk(t *testing.T) {
	var free atomic.Uint64
	free.Store(900 << 20)
	opts := store.Options{
		Dir: t.TempDir(), Profile: store.ProfileSmall, Logger: quiet, LimitBytes: 150_000, MinFreePercent: 5,
		AccessFlushInterval: time.Hour, MaintenanceInterval: time.Hour, GCInterval: time.Hour,
		Statfs: func(string) (store.DiskSpace, error) { return store.DiskSpace{Total: 1 << 30, Free: free.Load()}, nil },
		Tune:   func(o *badger.Options) { o.ValueLogFileSize, o.MemTableSize = 2<<20, 2<<20 },
	}
	st, err := store.Open(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var current atomic.Pointer[store.Store]
	current.Store(st)
	l := newLog(t)
	start(t, Options{Events: l, Store: current.Load, LowDiskFloor: 5})
	time.Sleep(30 * time.Millisecond) // subscribed

	for i := range 5 {
		replay(t, st, uint64(i))
	}
	evs := waitFor(t, l, "limit evictions", func(evs []events.Event) bool { return count(evs, events.SegmentsEvicted) > 0 })
	e := evs[0]
	if e.Fields["reason"] != "limit" || e.Fields["segments"].(int) < 2 || e.Fields["bytes"] == nil {
		t.Errorf("eviction event %+v", e)
	}

	free.Store(10 << 20) // 1% free
	if err := st.Maintain(context.Background()); err != nil {
		t.Fatal(err)
	}
	lowDiskEviction := func(evs []events.Event) bool {
		for _, e := range evs {
			if e.ID == events.SegmentsEvicted && e.Fields["reason"] == "low-disk" {
				return true
			}
		}
		return false
	}
	evs = waitFor(t, l, "low disk", func(evs []events.Event) bool {
		return count(evs, events.DiskLow) == 1 && lowDiskEviction(evs)
	})
	// The hosted cache stops: the watch lets go of the store.
	current.Store(nil)
	time.Sleep(30 * time.Millisecond)
}

// Forged or replayed forwards are events, per peer and for sources that
// are no peer at all.
func TestLeaderAuthFailures(t *testing.T) {
	var paris, unknown atomic.Uint64
	paris.Store(2) // before the watch started: not news
	leaders := func() report.Leaders {
		return report.Leaders{Running: true, Peers: []report.LeaderPeer{
			{Name: "berlin", Address: "10.2.0.5"},
			{Name: "paris", Address: "10.3.0.5", LeaderCounters: report.LeaderCounters{AuthFailures: paris.Load()}},
		}, UnknownSourceAuthFailures: unknown.Load()}
	}
	l := newLog(t)
	start(t, Options{Events: l, Leaders: leaders})
	time.Sleep(30 * time.Millisecond)
	paris.Add(3)
	unknown.Add(1)
	evs := waitFor(t, l, "leader auth failures", func(evs []events.Event) bool { return count(evs, events.LeaderAuthFailed) == 2 })
	byPeer := map[any]any{}
	for _, e := range evs {
		byPeer[e.Fields["peer"]] = e.Fields["count"]
	}
	if byPeer["paris"] != uint64(3) || byPeer[unknownSource] != uint64(1) || len(evs) != 2 {
		t.Errorf("events %+v", evs)
	}
}
