package events

import (
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outpost-appliance/outpost/firmware/logging"
)

var quiet = slog.New(slog.DiscardHandler)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func open(t *testing.T, opts Options) *Log {
	t.Helper()
	opts.Logger = quiet
	l, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func ids(evs []Event) []ID {
	var out []ID
	for _, e := range evs {
		out = append(out, e.ID)
	}
	return out
}

// The log is on the data partition: what was logged before a restart
// (clean or a power cut that cut the last record) is there after it, and
// numbering carries on.
func TestSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	clk := &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	l := open(t, Options{Dir: dir, Now: clk.Now})
	l.Log(Started, Fields{"version": "v1"})
	clk.Add(time.Minute)
	l.Log(PullFailed, Fields{"segment": "ab12", "peer": "10.0.0.7:1337", "err": "connection refused"})
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	// A power cut in the middle of a record.
	f, _ := os.OpenFile(filepath.Join(dir, logging.CurrentFile), os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"seq":3,"id":1`)
	f.Close()

	l = open(t, Options{Dir: dir, Now: clk.Now})
	l.Log(Stopped, nil)
	page := l.Query(Query{})
	if got := ids(page.Events); len(got) != 3 || got[0] != Stopped || got[1] != PullFailed || got[2] != Started {
		t.Fatalf("events after restart: %v", got)
	}
	if page.Events[0].Seq != 3 || page.Oldest != 1 || page.Latest != 3 {
		t.Errorf("numbering: %+v", page)
	}
	pf := page.Events[1]
	if pf.Name != "pull-failed" || pf.Level != Warning || pf.Fields["peer"] != "10.0.0.7:1337" ||
		pf.Message != `pulling offered content from a client failed: err="connection refused" peer=10.0.0.7:1337 segment=ab12` {
		t.Errorf("event read back: %+v", pf)
	}
}

func TestQueryFilters(t *testing.T) {
	clk := &clock{t: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)}
	l := open(t, Options{Now: clk.Now})
	for i := range 10 {
		id := PullFailed
		if i%3 == 0 {
			id = DiskLow
		}
		l.Log(id, Fields{"i": i})
		clk.Add(time.Hour)
	}
	at := func(h int) time.Time { return time.Date(2026, 3, 1, h, 0, 0, 0, time.UTC) }
	tests := []struct {
		name string
		q    Query
		seqs []uint64
		next uint64
	}{
		{"everything, newest first", Query{}, []uint64{10, 9, 8, 7, 6, 5, 4, 3, 2, 1}, 0},
		{"by ID", Query{IDs: []ID{DiskLow}}, []uint64{10, 7, 4, 1}, 0},
		{"by two IDs", Query{IDs: []ID{DiskLow, PullFailed}, Limit: 3}, []uint64{10, 9, 8}, 8},
		{"since", Query{Since: at(7)}, []uint64{10, 9, 8}, 0},
		{"until", Query{Until: at(2)}, []uint64{2, 1}, 0},
		{"a time range and an ID", Query{IDs: []ID{PullFailed}, Since: at(2), Until: at(6)}, []uint64{6, 5, 3}, 0},
		{"the next page", Query{Before: 8, Limit: 3}, []uint64{7, 6, 5}, 5},
		{"an ID nobody logged", Query{IDs: []ID{DiskFull}}, nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			page := l.Query(tt.q)
			var seqs []uint64
			for _, e := range page.Events {
				seqs = append(seqs, e.Seq)
			}
			if !slicesEqual(seqs, tt.seqs) || page.Next != tt.next {
				t.Errorf("seqs %v next %d, want %v next %d", seqs, page.Next, tt.seqs, tt.next)
			}
		})
	}
}

func slicesEqual(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// A flood of one failure is logged up to the burst, then summed up in one
// event 21 at the window's end, as Windows does; other IDs are not held
// back, and Counts sees every occurrence.
func TestFloodIsSummarized(t *testing.T) {
	l := open(t, Options{Burst: 3, Window: 200 * time.Millisecond})
	for range 50 {
		l.Log(AuthFailed, Fields{"remote": "192.0.2.1"})
	}
	l.Log(DiskLow, nil)
	deadline := time.Now().Add(5 * time.Second)
	var page Page
	for {
		page = l.Query(Query{IDs: []ID{Suppressed}})
		if len(page.Events) > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if len(page.Events) != 1 {
		t.Fatalf("suppressed summaries: %+v", page.Events)
	}
	sum := page.Events[0]
	if sum.Fields["event_id"] != int(AuthFailed) || sum.Fields["count"] != 47 || !strings.Contains(sum.Message, "count=47") {
		t.Errorf("summary: %+v", sum)
	}
	if n := len(l.Query(Query{IDs: []ID{AuthFailed}}).Events); n != 3 {
		t.Errorf("%d auth-failed events logged, want the burst of 3", n)
	}
	if n := len(l.Query(Query{IDs: []ID{DiskLow}}).Events); n != 1 {
		t.Errorf("disk-low was held back by another ID's flood")
	}
	if c := l.Counts(); c[AuthFailed] != 50 || c[DiskLow] != 1 {
		t.Errorf("counts %v", c)
	}
	// A new window logs again.
	time.Sleep(250 * time.Millisecond)
	l.Log(AuthFailed, nil)
	if n := len(l.Query(Query{IDs: []ID{AuthFailed}}).Events); n != 4 {
		t.Errorf("after the window: %d auth-failed events, want 4", n)
	}
}

// The log is bounded on disk and in memory; what is kept is the newest.
func TestBounded(t *testing.T) {
	dir := t.TempDir()
	l := open(t, Options{Dir: dir, MaxBytes: 8 << 10, MaxEvents: 100, Burst: 1 << 20})
	for i := range 500 {
		l.Log(SegmentsEvicted, Fields{"segments": i, "reason": "limit"})
	}
	page := l.Query(Query{Limit: 1000})
	if len(page.Events) > 100 || page.Latest != 500 || page.Events[0].Fields["segments"] != 499 {
		t.Errorf("in memory: %d events, latest %d", len(page.Events), page.Latest)
	}
	l.Close()
	var size int64
	for _, name := range []string{logging.CurrentFile, logging.PreviousFile} {
		if st, err := os.Stat(filepath.Join(dir, name)); err == nil {
			size += st.Size()
		}
	}
	if size > 8<<10 {
		t.Errorf("%d bytes on disk, bound 8 KiB", size)
	}
	l = open(t, Options{Dir: dir})
	if page := l.Query(Query{Limit: 1}); page.Latest != 500 || page.Oldest <= 1 {
		t.Errorf("after reopening: %+v", page)
	}
}

func TestCatalogIsConsistent(t *testing.T) {
	seen := map[string]ID{}
	for id, def := range Catalog() {
		if def.ID != id || def.Name == "" || def.Summary == "" || (def.Level != Info && def.Level != Warning && def.Level != Error) {
			t.Errorf("definition %d: %+v", id, def)
		}
		if other, dup := seen[def.Name]; dup {
			t.Errorf("name %q used by %d and %d", def.Name, id, other)
		}
		seen[def.Name] = id
	}
	// docs/events.md documents every ID.
	doc, err := os.ReadFile("../../docs/events.md")
	if err != nil {
		t.Fatal(err)
	}
	for id, def := range Catalog() {
		if !strings.Contains(string(doc), "| "+strconv.Itoa(int(id))+" | `"+def.Name+"` |") {
			t.Errorf("docs/events.md lacks the row of %d %s", id, def.Name)
		}
	}
	if d := Lookup(9999); d.Name != "event-9999" {
		t.Errorf("unknown ID: %+v", d)
	}
}
