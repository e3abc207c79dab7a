package metrics

import (
	"cmp"
	"flag"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/outpost-appliance/outpost/cache/preload"
	"github.com/outpost-appliance/outpost/firmware/events"
	"github.com/outpost-appliance/outpost/firmware/report"
	"github.com/outpost-appliance/outpost/firmware/report/reporttest"
	"github.com/outpost-appliance/outpost/firmware/supervise"
)

var update = flag.Bool("update", false, "rewrite testdata/metrics.golden")

var now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

type fakeSupervisor []supervise.Status

func (f fakeSupervisor) Snapshot() []supervise.Status { return f }

type fakeEvents map[events.ID]uint64

func (f fakeEvents) Counts() map[events.ID]uint64 { return f }

func sources(withServices bool) Sources {
	return Sources{
		Version: "v1.2.3", Mode: "daemon",
		Report:     report.New(reporttest.Sources(reporttest.NewStore(3, now), withServices, now)),
		Supervisor: fakeSupervisor{{Name: "api", State: supervise.Running}, {Name: "hosted-cache", State: supervise.BackingOff, Restarts: 2}},
		Events:     fakeEvents{events.PullFailed: 3, events.Started: 1},
		Preload: fakePreload{Running: true, Jobs: map[preload.State]int{preload.Running: 1, preload.Completed: 2},
			FetchedBytes: 5 << 20, StoredBlocks: 80, RateBits: 19.5e6, Limit: 20_000_000, Inject: preload.InjectStats{Blocks: 3, Bytes: 196608}},
	}
}

type fakePreload preload.Stats

func (f fakePreload) Stats() preload.Stats { return preload.Stats(f) }

// The metric names and labels are a contract with every dashboard and
// alert written against them: this golden list changes only on purpose
// (go test ./firmware/metrics -update), and only by adding.
func TestMetricNamesAreStable(t *testing.T) {
	reg := NewRegistry(sources(true))
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	seen := map[string]bool{}
	for _, f := range families {
		seen[f.GetName()] = true
		if !strings.HasPrefix(f.GetName(), "outpost_") {
			continue
		}
		labels := []string{}
		for _, l := range f.GetMetric()[0].GetLabel() {
			labels = append(labels, l.GetName())
		}
		lines = append(lines, f.GetName()+" "+strings.ToLower(f.GetType().String())+" "+cmp.Or(strings.Join(labels, ","), "-"))
	}
	slices.Sort(lines)
	got := strings.Join(lines, "\n") + "\n"
	if *update {
		os.WriteFile("testdata/metrics.golden", []byte(got), 0o644)
	}
	want, err := os.ReadFile("testdata/metrics.golden")
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("metric families changed (go test -update to accept):\n got:\n%s\nwant:\n%s", got, want)
	}
	for _, name := range []string{"go_goroutines", "go_memstats_heap_alloc_bytes", "process_cpu_seconds_total", "process_resident_memory_bytes", "process_start_time_seconds"} {
		if !seen[name] {
			t.Errorf("no %s: the Go runtime and process collectors are missing", name)
		}
	}
}

func TestValues(t *testing.T) {
	tests := []struct {
		name         string
		withServices bool
		want         string
		metrics      []string
	}{
		{"with leader and discovery", true, `
# HELP outpost_cache_hits_total Blocks served from the store.
# TYPE outpost_cache_hits_total counter
outpost_cache_hits_total{tag="BITS-4.0"} 900
outpost_cache_hits_total{tag="Other"} 0
outpost_cache_hits_total{tag="SMB"} 0
outpost_cache_hits_total{tag="WebIO"} 0
outpost_cache_hits_total{tag="WinINet"} 0
# HELP outpost_cache_wan_saved_bytes_total Estimated WAN bytes saved: block bytes served from the store, which clients would otherwise have fetched from the origin.
# TYPE outpost_cache_wan_saved_bytes_total counter
outpost_cache_wan_saved_bytes_total 1.048576e+06
# HELP outpost_leader_auth_failures_total Forwarded messages that failed authentication.
# TYPE outpost_leader_auth_failures_total counter
outpost_leader_auth_failures_total{address="10.2.0.5:3704",peer="berlin"} 0
outpost_leader_auth_failures_total{address="10.3.0.5:3704",peer="paris"} 2
# HELP outpost_service_running 1 when the service is running, 0 when it is starting, backing off, failed or stopped.
# TYPE outpost_service_running gauge
outpost_service_running{service="api"} 1
outpost_service_running{service="hosted-cache"} 0
# HELP outpost_events_total Events by ID (docs/events.md), suppressed ones included.
# TYPE outpost_events_total counter
outpost_events_total{id="1",name="started"} 1
outpost_events_total{id="14",name="pull-failed"} 3
`, []string{"outpost_cache_hits_total", "outpost_cache_wan_saved_bytes_total", "outpost_leader_auth_failures_total", "outpost_service_running", "outpost_events_total"}},
		{"without them", false, `
# HELP outpost_leader_up 1 when the leader service runs.
# TYPE outpost_leader_up gauge
outpost_leader_up 0
# HELP outpost_discovery_up 1 when the discovery responder runs.
# TYPE outpost_discovery_up gauge
outpost_discovery_up 0
`, []string{"outpost_leader_up", "outpost_discovery_up", "outpost_leader_forwards_sent_total"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := NewRegistry(sources(tt.withServices))
			if err := testutil.GatherAndCompare(reg, strings.NewReader(tt.want), tt.metrics...); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestHandler(t *testing.T) {
	ts := httptest.NewServer(Handler(NewRegistry(sources(false)), slog.New(slog.DiscardHandler)))
	defer ts.Close()
	resp, err := http.Get(ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `outpost_build_info{mode="daemon",version="v1.2.3"} 1`) {
		t.Errorf("%d:\n%s", resp.StatusCode, body)
	}
}
