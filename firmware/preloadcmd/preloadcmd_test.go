package preloadcmd

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/outpost-appliance/outpost/cache/preload"
	"github.com/outpost-appliance/outpost/firmware/api"
)

func TestUsage(t *testing.T) {
	tests := []struct {
		args []string
		code int
		msg  string
	}{
		{nil, 2, "expected one URL"},
		{[]string{"http://a/f", "http://b/f"}, 2, "expected one URL"},
		{[]string{"ftp://a/f"}, 2, "http:// or https://"},
		{[]string{"http://a/f", "--limit", "fast"}, 2, "--limit"},
		{[]string{"http://a/f", "--version", "3"}, 2, "version 3"},
		{[]string{"http://a/f", "--version", "x"}, 2, "--version"},
		{[]string{"http://a/f", "--window", "nights"}, 2, "--window"},
		{[]string{"--list", "http://a/f"}, 2, "take no URL"},
		{[]string{"http://a/f", "--interval", "0s"}, 2, "--interval"},
		{[]string{"--bogus"}, 2, "flag provided but not defined"},
		// A valid request to an API that is not there.
		{[]string{"http://a/f", "--api", "http://127.0.0.1:1"}, 3, "is outpost running?"},
		{[]string{"--list", "--api", "http://127.0.0.1:1"}, 3, "is outpost running?"},
	}
	for _, tt := range tests {
		var out, errOut bytes.Buffer
		code := Run(context.Background(), tt.args, &out, &errOut)
		if code != tt.code || !strings.Contains(errOut.String(), tt.msg) {
			t.Errorf("%q: exit %d, want %d; stderr %q", tt.args, code, tt.code, errOut.String())
		}
	}
}

func TestParseSpec(t *testing.T) {
	s, err := parseSpec([]string{"https://wsus.example.org/f.cab"}, "20Mbit/s", "1,2", "22:00-06:00 Europe/Berlin", false)
	if err != nil || s.URL != "https://wsus.example.org/f.cab" || s.Limit != 20_000_000 || len(s.Versions) != 2 || s.Window.String() != "22:00-06:00 Europe/Berlin" {
		t.Errorf("%+v, %v", s, err)
	}
}

// The progress line says what matters in each state; off a terminal it
// is printed on changes only.
func TestProgress(t *testing.T) {
	var out bytes.Buffer
	p := newProgress(&out, true)
	running := &preload.Job{State: preload.Running, Progress: 0.5, Bytes: 2 << 20, BytesHeld: 1 << 20, RateBits: 19.8e6, ETASeconds: 130}
	p.show(running)
	p.show(running) // unchanged: not printed again
	p.show(&preload.Job{State: preload.Completed, Progress: 1, Bytes: 2 << 20, BytesHeld: 2 << 20})
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "[############............]  50.0%") || !strings.Contains(lines[0], "19.8 Mbit/s") ||
		!strings.Contains(lines[0], "ETA 2m10s") || !strings.HasSuffix(lines[1], "completed") {
		t.Errorf("progress:\n%s", out.String())
	}
	paused := &preload.Job{State: preload.Paused, Next: time.Date(2026, 3, 2, 1, 0, 0, 0, time.Local)}
	paused.Window.UnmarshalText([]byte("01:00-05:00"))
	if d := api.PreloadJobDetail(paused); d != "window 01:00-05:00, opens 2026-03-02 01:00" {
		t.Errorf("paused: %q", d)
	}
}
