package api

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outpost-appliance/outpost/firmware/config"
	"github.com/outpost-appliance/outpost/firmware/events"
	"github.com/outpost-appliance/outpost/firmware/history"
	"github.com/outpost-appliance/outpost/firmware/report"
	"github.com/outpost-appliance/outpost/firmware/report/reporttest"
	"github.com/outpost-appliance/outpost/firmware/supervise"
)

const testToken = "0123456789abcdef-token"

var now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// fixture is a server over stand-in sources.
type fixture struct {
	srv    *Server
	ts     *httptest.Server
	store  *reporttest.Store
	events *events.Log
	power  chan PowerAction
	clock  *testClock
}

type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type fixtureOptions struct {
	anonymous    bool
	token        string
	withServices bool
	noStore      bool
}

func newFixture(t *testing.T, fo fixtureOptions) *fixture {
	t.Helper()
	f := &fixture{power: make(chan PowerAction, 4), clock: &testClock{t: now}}
	if !fo.noStore {
		f.store = reporttest.NewStore(5, now)
	}
	var err error
	if f.events, err = events.Open(events.Options{Logger: quiet}); err != nil {
		t.Fatal(err)
	}
	hist := history.New(10, time.Minute)
	hist.Add(history.Sample{Time: now.Add(-time.Minute)})
	hist.Add(history.Sample{Time: now, BytesServed: 1 << 20, WANBytesSaved: 1 << 20})
	cfg := config.Default()
	cfg.API.Token = config.NewSecret(fo.token)
	cfg.Leader.Secret = config.NewSecret("leader-secret-0123456789")
	sup := supervise.New(supervise.Options{Logger: quiet})
	src := reporttest.Sources(f.store, fo.withServices, now)
	if fo.noStore {
		src = reporttest.Sources(nil, fo.withServices, now)
	}
	f.srv = New(Options{
		Version: "v9", Mode: ModeDaemon, Config: cfg, ConfigSource: "/boot/outpost.toml", Supervisor: sup,
		Token: config.NewSecret(fo.token), ReadOnlyAnonymous: fo.anonymous,
		Report: report.New(src), Events: f.events, History: hist,
		Power: func(a PowerAction) { f.power <- a },
		Board: "Test Board", TimeSync: func() TimeSync { return TimeSync{Now: now, Synced: true, Source: "test"} },
		Now: f.clock.Now, Logger: quiet,
	})
	f.ts = httptest.NewServer(f.srv)
	t.Cleanup(f.ts.Close)
	return f
}

func (f *fixture) call(t *testing.T, method, path, auth string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, f.ts.URL+path, nil)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, body
}

var segID = strings.Repeat("02", 32)

// endpoints lists every endpoint, whether it changes something, and the
// code of a successful call.
var endpoints = []struct {
	method, path string
	change       bool
	ok           int
}{
	{"GET", "/api/v1/status", false, 200},
	{"GET", "/api/v1/cache", false, 200},
	{"GET", "/api/v1/segments", false, 200},
	{"GET", "/api/v1/segments/top", false, 200},
	{"GET", "/api/v1/segments/" + segID, false, 200},
	{"GET", "/api/v1/leaders", false, 200},
	{"GET", "/api/v1/discovery", false, 200},
	{"GET", "/api/v1/events", false, 200},
	{"GET", "/api/v1/events/catalog", false, 200},
	{"GET", "/api/v1/config", false, 200},
	{"GET", "/api/v1/history", false, 200},
	{"GET", "/api/v1/preload", false, 200},
	{"GET", "/metrics", false, 200},
	{"DELETE", "/api/v1/segments/" + segID, true, 200},
	{"POST", "/api/v1/cache/flush", true, 200},
	{"POST", "/api/v1/reboot", true, 202},
	{"POST", "/api/v1/poweroff", true, 202},
}

// Every endpoint, with and without the token, with anonymous reads on and
// off, and with no token configured at all.
func TestEveryEndpointWithAndWithoutTheToken(t *testing.T) {
	configs := []struct {
		name      string
		anonymous bool
		token     string
	}{
		{"anonymous reads", true, testToken},
		{"reads need the token", false, testToken},
		{"no token configured", true, ""},
	}
	auths := []struct {
		name, header string
	}{
		{"no token", ""},
		{"wrong token", "Bearer 0123456789abcdef-tokeX"},
		{"a shorter wrong token", "Bearer 0123"},
		{"not a bearer", "Basic " + testToken},
		{"the token", "Bearer " + testToken},
	}
	for _, cfg := range configs {
		for _, ep := range endpoints {
			for _, auth := range auths {
				t.Run(cfg.name+"/"+ep.method+" "+ep.path+"/"+auth.name, func(t *testing.T) {
					f := newFixture(t, fixtureOptions{anonymous: cfg.anonymous, token: cfg.token})
					want := ep.ok
					authorized := auth.header == "Bearer "+testToken && cfg.token != ""
					switch {
					case cfg.token == "" && ep.change:
						want = http.StatusForbidden
					case ep.change && !authorized, !ep.change && !cfg.anonymous && !authorized:
						want = http.StatusUnauthorized
					}
					code, body := f.call(t, ep.method, ep.path, auth.header)
					if code != want {
						t.Fatalf("%d, want %d: %s", code, want, body)
					}
					if want == http.StatusUnauthorized {
						if n := len(f.events.Query(events.Query{IDs: []events.ID{events.AuthFailed}}).Events); n != 1 {
							t.Errorf("%d auth-failed events, want 1", n)
						}
					}
					if code/100 == 2 && ep.path != "/metrics" && !json.Valid(body) {
						t.Errorf("not JSON: %s", body)
					}
				})
			}
		}
	}
}

// Five bad tokens from one address within a minute and it is refused
// (429, the token not even compared) for a minute; other addresses are
// not; the failures are events.
func TestFailedAttemptsAreRateLimited(t *testing.T) {
	f := newFixture(t, fixtureOptions{anonymous: true, token: testToken})
	call := func(remote, auth string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("POST", "/api/v1/cache/flush", nil)
		req.RemoteAddr = remote
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		rec := httptest.NewRecorder()
		f.srv.ServeHTTP(rec, req)
		return rec
	}
	steps := []struct {
		name    string
		remote  string
		auth    string
		advance time.Duration
		code    int
	}{
		{"1st failure", "192.0.2.7:4000", "Bearer nope", 0, 401},
		{"2nd failure", "192.0.2.7:4001", "Bearer nope", 0, 401},
		{"3rd failure", "192.0.2.7:4002", "", 0, 401},
		{"4th failure", "192.0.2.7:4003", "Bearer nope", 0, 401},
		{"5th failure blocks", "192.0.2.7:4004", "Bearer nope", 0, 401},
		{"blocked: even the right token", "192.0.2.7:4005", "Bearer " + testToken, 0, 429},
		{"another address is not blocked", "192.0.2.8:4000", "Bearer " + testToken, 0, 200},
		{"a failure from an IPv6 client", "[2001:db8::1]:1", "Bearer nope", 0, 401},
		{"still blocked after 30 s", "192.0.2.7:4006", "Bearer " + testToken, 30 * time.Second, 429},
		{"free again after the block", "192.0.2.7:4007", "Bearer " + testToken, 31 * time.Second, 200},
	}
	for _, st := range steps {
		f.clock.Add(st.advance)
		rec := call(st.remote, st.auth)
		if rec.Code != st.code {
			t.Fatalf("%s: %d, want %d: %s", st.name, rec.Code, st.code, rec.Body)
		}
		if st.code == 429 && rec.Header().Get("Retry-After") == "" {
			t.Errorf("%s: no Retry-After", st.name)
		}
	}
	// The window of the first IPv6 failure is over: five new ones.
	for i := range 5 {
		call("[2001:db8::"+string(rune('2'+i))+"]:1", "Bearer nope")
	}
	if rec := call("[2001:db8::ffff]:1", "Bearer "+testToken); rec.Code != 429 {
		t.Errorf("another address of the blocked /64: %d", rec.Code)
	}
	evs := f.events.Query(events.Query{IDs: []events.ID{events.AuthFailed}}).Events
	if len(evs) != 10 || evs[len(evs)-1].Fields["remote"] != "192.0.2.7:4000" || evs[len(evs)-1].Fields["path"] != "POST /api/v1/cache/flush" {
		t.Errorf("auth-failed events: %d, oldest %+v", len(evs), evs[len(evs)-1])
	}
}

func TestReadEndpoints(t *testing.T) {
	f := newFixture(t, fixtureOptions{anonymous: true, token: testToken, withServices: true})
	f.events.Log(events.PullFailed, events.Fields{"tag": "BITS-4.0", "count": 2})
	f.events.Log(events.DiskLow, nil)
	get := func(path string, v any) {
		t.Helper()
		code, body := f.call(t, "GET", path, "")
		if code != 200 {
			t.Fatalf("%s: %d %s", path, code, body)
		}
		if err := json.Unmarshal(body, v); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
	}
	var st Status
	get("/api/v1/status", &st)
	if st.Board != "Test Board" || !st.Time.Synced || st.Version != "v9" {
		t.Errorf("status: %+v", st)
	}
	var cache report.Cache
	get("/api/v1/cache", &cache)
	if !cache.Running || cache.HitRatio != 0.9 || cache.WANBytesSaved != 1<<20 || cache.Tags["BITS-4.0"].Hits != 900 {
		t.Errorf("cache: %+v", cache)
	}
	var page report.SegmentPage
	get("/api/v1/segments?limit=2", &page)
	if len(page.Segments) != 2 || page.Next != page.Segments[1].ID {
		t.Errorf("segments: %+v", page)
	}
	get("/api/v1/segments?limit=2&after="+page.Next, &page)
	if len(page.Segments) != 2 || page.Segments[0].ID != strings.Repeat("03", 32) {
		t.Errorf("second page: %+v", page)
	}
	var top report.TopSegments
	get("/api/v1/segments/top?limit=2", &top)
	if len(top.Segments) != 2 || top.Segments[0].Hits != 40 {
		t.Errorf("top: %+v", top)
	}
	var seg report.Segment
	get("/api/v1/segments/"+segID, &seg)
	if seg.ID != segID || seg.Integrity != report.Replay || seg.BlocksHeld != 2 {
		t.Errorf("segment: %+v", seg)
	}
	var leaders report.Leaders
	get("/api/v1/leaders", &leaders)
	if !leaders.Running || len(leaders.Peers) != 2 || leaders.Peers[1].State != report.PeerUnreachable {
		t.Errorf("leaders: %+v", leaders)
	}
	var disc report.Discovery
	get("/api/v1/discovery", &disc)
	if disc.ProbesSeen != 1010 || disc.XDPDropped["rate-limit"] != 20 {
		t.Errorf("discovery: %+v", disc)
	}
	var evs events.Page
	get("/api/v1/events?id=14", &evs)
	if len(evs.Events) != 1 || evs.Events[0].ID != events.PullFailed {
		t.Errorf("events by ID: %+v", evs)
	}
	get("/api/v1/events?since=1h", &evs)
	if len(evs.Events) != 2 {
		t.Errorf("events since 1h: %+v", evs)
	}
	get("/api/v1/events?until=2020-01-01T00:00:00Z", &evs)
	if len(evs.Events) != 0 {
		t.Errorf("events until 2020: %+v", evs)
	}
	var hist History
	get("/api/v1/history", &hist)
	if hist.IntervalSeconds != 60 || len(hist.Samples) != 2 {
		t.Errorf("history: %+v", hist)
	}
	code, body := f.call(t, "GET", "/api/v1/config", "")
	if code != 200 || strings.Contains(string(body), testToken) || strings.Contains(string(body), "leader-secret") ||
		!strings.Contains(string(body), `"token": "(redacted)"`) || !strings.Contains(string(body), `"source": "/boot/outpost.toml"`) {
		t.Errorf("config not redacted or incomplete: %s", body)
	}

	bad := []string{"/api/v1/segments?limit=0", "/api/v1/segments?after=xyz", "/api/v1/segments/xyz",
		"/api/v1/events?id=abc", "/api/v1/events?since=yesterday", "/api/v1/events?limit=5000"}
	for _, path := range bad {
		if code, body := f.call(t, "GET", path, ""); code != 400 {
			t.Errorf("%s: %d %s", path, code, body)
		}
	}
	if code, _ := f.call(t, "GET", "/api/v1/segments/"+strings.Repeat("ee", 32), ""); code != 404 {
		t.Errorf("unknown segment: %d", code)
	}
}

// Before the leader and discovery services exist, their endpoints say so
// in the empty form; without a running hosted cache, the store's
// endpoints answer 503.
func TestServicesNotRunning(t *testing.T) {
	f := newFixture(t, fixtureOptions{anonymous: true, token: testToken, noStore: true})
	code, body := f.call(t, "GET", "/api/v1/leaders", "")
	if code != 200 || !strings.Contains(string(body), `"running": false`) || !strings.Contains(string(body), `"peers": []`) {
		t.Errorf("leaders: %d %s", code, body)
	}
	code, body = f.call(t, "GET", "/api/v1/discovery", "")
	if code != 200 || !strings.Contains(string(body), `"running": false`) || !strings.Contains(string(body), `"interfaces": []`) {
		t.Errorf("discovery: %d %s", code, body)
	}
	code, body = f.call(t, "GET", "/api/v1/cache", "")
	if code != 200 || !strings.Contains(string(body), `"running": false`) {
		t.Errorf("cache: %d %s", code, body)
	}
	for _, ep := range []struct{ method, path string }{{"GET", "/api/v1/segments"}, {"GET", "/api/v1/segments/top"},
		{"DELETE", "/api/v1/segments/" + segID}, {"POST", "/api/v1/cache/flush"}} {
		if code, body := f.call(t, ep.method, ep.path, "Bearer "+testToken); code != 503 {
			t.Errorf("%s %s: %d %s", ep.method, ep.path, code, body)
		}
	}
}

// Purge, flush and power actions are events naming who asked.
func TestChangesAreEvents(t *testing.T) {
	f := newFixture(t, fixtureOptions{anonymous: true, token: testToken})
	client := &Client{BaseURL: f.ts.URL, Token: testToken}
	ctx := context.Background()
	if err := client.DeleteSegment(ctx, segID); err != nil {
		t.Fatal(err)
	}
	if err := client.DeleteSegment(ctx, segID); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("purging it again: %v", err)
	}
	if f.store.Len() != 4 {
		t.Errorf("%d segments after the purge", f.store.Len())
	}
	code, body := f.call(t, "POST", "/api/v1/cache/flush", "Bearer "+testToken)
	if code != 200 || !strings.Contains(string(body), `"segments": 4`) || f.store.Len() != 0 {
		t.Errorf("flush: %d %s", code, body)
	}
	f.call(t, "POST", "/api/v1/reboot", "Bearer "+testToken)
	<-f.power
	page, _, err := client.Events(ctx, url.Values{"id": {"114,115,121"}})
	if err != nil {
		t.Fatal(err)
	}
	var got []events.ID
	for _, e := range page.Events {
		got = append(got, e.ID)
		if !strings.HasPrefix(e.Fields["remote"].(string), "127.0.0.1:") {
			t.Errorf("event %d does not name the caller: %+v", e.ID, e.Fields)
		}
	}
	if len(got) != 3 || got[0] != events.PowerRequested || got[1] != events.StoreFlushed || got[2] != events.SegmentPurged {
		t.Errorf("events %v", got)
	}
}

func TestParseEventQuery(t *testing.T) {
	tests := []struct {
		name                      string
		ids                       []string
		since, until, before, lim string
		want                      events.Query
		bad                       bool
	}{
		{"nothing", nil, "", "", "", "", events.Query{}, false},
		{"IDs repeated and listed", []string{"14", "6401, 4"}, "", "", "", "", events.Query{IDs: []events.ID{14, 6401, 4}}, false},
		{"a duration", nil, "90m", "", "", "", events.Query{Since: now.Add(-90 * time.Minute)}, false},
		{"days", nil, "2d", "", "", "", events.Query{Since: now.Add(-48 * time.Hour)}, false},
		{"times", nil, "2026-02-01T00:00:00Z", "2026-02-02T00:00:00Z", "", "", events.Query{
			Since: time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC), Until: time.Date(2026, 2, 2, 0, 0, 0, 0, time.UTC)}, false},
		{"cursor and limit", nil, "", "", "120", "20", events.Query{Before: 120, Limit: 20}, false},
		{"a bad ID", []string{"x"}, "", "", "", "", events.Query{}, true},
		{"a negative ID", []string{"-4"}, "", "", "", "", events.Query{}, true},
		{"a bad time", nil, "soon", "", "", "", events.Query{}, true},
		{"a bad limit", nil, "", "", "", "0", events.Query{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, err := ParseEventQuery(tt.ids, tt.since, tt.until, tt.before, tt.lim, now)
			if (err != nil) != tt.bad {
				t.Fatalf("err %v", err)
			}
			if !tt.bad && (len(q.IDs) != len(tt.want.IDs) || !q.Since.Equal(tt.want.Since) || !q.Until.Equal(tt.want.Until) ||
				q.Before != tt.want.Before || q.Limit != tt.want.Limit) {
				t.Errorf("%+v, want %+v", q, tt.want)
			}
		})
	}
}

func TestFormatting(t *testing.T) {
	tests := []struct {
		n    uint64
		want string
	}{{0, "0 B"}, {1023, "1023 B"}, {1024, "1.0 KiB"}, {1536, "1.5 KiB"}, {1 << 20, "1.0 MiB"}, {5 << 30, "5.0 GiB"}}
	for _, tt := range tests {
		if got := FormatBytes(tt.n); got != tt.want {
			t.Errorf("FormatBytes(%d) = %q, want %q", tt.n, got, tt.want)
		}
	}
	if got := FormatPercent(0.9); got != "90.0 %" {
		t.Errorf("FormatPercent(0.9) = %q", got)
	}
}
