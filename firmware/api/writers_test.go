package api

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/outpost-appliance/outpost/cache/preload"
	"github.com/outpost-appliance/outpost/firmware/report"
)

// outpost status shows the peer leaders and the preload jobs.
func TestWriteLeadersAndPreload(t *testing.T) {
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	var b bytes.Buffer
	WriteLeaders(&b, &report.Leaders{Running: true, Forwarding: true, Peers: []report.LeaderPeer{
		{Name: "berlin", Address: "10.2.0.5:3704", State: report.PeerReachable, StateSince: now.Add(-2 * time.Hour),
			LeaderCounters: report.LeaderCounters{ForwardsSent: 12, Matches: 3, RelayBytes: 3 << 20}},
		{Name: "paris", Address: "10.3.0.5:3704", State: report.PeerUnreachable, StateSince: now.Add(-90 * time.Second),
			Reason: "no answer to 3 keepalives in 1m30s"},
	}}, now)
	for _, want := range []string{"forwarding on", "berlin", "reachable", "2h", "3.0 MiB", "paris", "unreachable (no answer to 3 keepalives in 1m30s)", "1m30s"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("leaders: no %q in\n%s", want, b.String())
		}
	}
	b.Reset()
	WritePreload(&b, &PreloadList{Running: true, RateBits: 20e6, Jobs: []preload.Job{
		{ID: "j1", Spec: preload.Spec{URL: "http://origin/win11.wim"}, State: preload.Running, Progress: 0.425, RateBits: 20e6, ETASeconds: 95},
		{ID: "j2", Spec: preload.Spec{URL: "http://origin/gone.cab"}, State: preload.Failed, Error: "HTTP 404"},
	}})
	for _, want := range []string{"preload service running", "20.0 Mbit/s now", "j1", "42.5%", "http://origin/win11.wim", "ETA 1m35s", "j2", "failed", "error: HTTP 404"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("preload: no %q in\n%s", want, b.String())
		}
	}
}
