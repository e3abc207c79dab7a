package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/outpost-appliance/outpost/firmware/api"
	"github.com/outpost-appliance/outpost/firmware/events"
	"github.com/outpost-appliance/outpost/firmware/report"
	"github.com/outpost-appliance/outpost/peerdist/pccrc"
)

const testToken = "0123456789abcdef-test-token"

// daemon is `outpost run` in this process on loopback ports.
type daemon struct {
	url, hostedHTTP string
	log             *lockedBuffer
	cancel          context.CancelFunc
	exit            chan int
}

func startDaemon(t *testing.T, dataDir string) *daemon {
	t.Helper()
	addr := freeAddr(t)
	d := &daemon{url: "http://" + addr, hostedHTTP: freeAddr(t), log: &lockedBuffer{}, exit: make(chan int, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	d.cancel = cancel
	go func() {
		d.exit <- run(ctx, []string{"run", "--config", exampleFile, "--data-dir", dataDir,
			"--set", "api.listen=" + addr, "--set", "api.token=" + testToken, "--set", "cache.dir=store",
			"--set", "hosted_cache.http_listen=" + d.hostedHTTP, "--set", "hosted_cache.https_listen=" + freeAddr(t),
			"--set", "peer.listen=" + freeAddr(t), "--set", "leader.relay_listen=" + freeAddr(t),
			"--set", "hosted_cache.hostname=localhost"}, d.log, d.log)
	}()
	deadline := time.Now().Add(15 * time.Second)
	for {
		st, _, err := (&api.Client{BaseURL: d.url}).Status(ctx)
		if err == nil && hasServices(*st, "hosted-cache") {
			if c, _, err := (&api.Client{BaseURL: d.url}).Cache(ctx); err == nil && c.Running {
				break
			}
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("the daemon never came up (%v); its log:\n%s", err, d.log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Cleanup(func() { d.stop(t) })
	return d
}

func (d *daemon) stop(t *testing.T) {
	if d.cancel == nil {
		return
	}
	d.cancel()
	d.cancel = nil
	select {
	case code := <-d.exit:
		if code != 0 {
			t.Errorf("outpost run exited %d:\n%s", code, d.log.String())
		}
	case <-time.After(40 * time.Second):
		t.Fatal("outpost run did not stop")
	}
}

// cli runs an outpost subcommand.
func cli(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(context.Background(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// stage offers content to the daemon's hosted cache as a Windows client
// does, then fetches it back from the cache `gets` times; it returns the
// content's segment IDs.
func stage(t *testing.T, d *daemon, size int, gets int) []string {
	t.Helper()
	dir := t.TempDir()
	data := make([]byte, size)
	rand.NewChaCha8([32]byte{byte(size)}).Read(data)
	ci, err := pccrc.GenerateV1(context.Background(), bytes.NewReader(data), pccrc.SHA256, []byte("branch"))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := ci.MarshalBinary()
	dataPath, ciPath := filepath.Join(dir, "data"), filepath.Join(dir, "data.ci")
	os.WriteFile(dataPath, data, 0o644)
	os.WriteFile(ciPath, raw, 0o644)
	if code, _, errOut := cli(t, "offer", "--to", d.hostedHTTP, "--version", "2", "--ci", ciPath, "--data", dataPath,
		"--listen", "127.0.0.1:0", "--tag", "BITS-4.0", "--timeout", "30s"); code != 0 {
		t.Fatalf("offer: exit %d: %s", code, errOut)
	}
	for i := range gets {
		out := filepath.Join(dir, "out")
		if code, _, errOut := cli(t, "get", "--from", d.hostedHTTP, "--ci", ciPath, "-o", out); code != 0 {
			t.Fatalf("get %d: exit %d: %s", i, code, errOut)
		}
	}
	var ids []string
	for i := range ci.Segments {
		ids = append(ids, hex.EncodeToString(ci.ID(i)))
	}
	return ids
}

// `outpost status`, `segments` and `events` against a running outpost:
// tables by default, JSON on request, the token for purging.
func TestManagementCommands(t *testing.T) {
	d := startDaemon(t, filepath.Join(t.TempDir(), "data"))
	ids := stage(t, d, 300_000, 2)
	client := &api.Client{BaseURL: d.url}

	code, out, errOut := cli(t, "status", "--api", d.url)
	if code != 0 || !strings.Contains(out, "cache: ") || !strings.Contains(out, "hit ratio 100.0 %") {
		t.Errorf("status: exit %d: %s%s", code, out, errOut)
	}

	code, out, errOut = cli(t, "segments", "--api", d.url)
	if code != 0 || !strings.Contains(out, ids[0]) || !strings.Contains(out, "replay") || !strings.Contains(out, "BITS-4.0") {
		t.Errorf("segments: exit %d:\n%s%s", code, out, errOut)
	}
	code, out, _ = cli(t, "segments", "--api", d.url, "--json", "--limit", "1", "--all")
	var page report.SegmentPage
	if err := json.Unmarshal([]byte(out), &page); code != 0 || err != nil || len(page.Segments) != len(ids) || page.Segments[0].Hits == 0 {
		t.Errorf("segments --json --all: exit %d, %v:\n%s", code, err, out)
	}

	tests := []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{"purge without the token", []string{"segments", "--api", d.url, "--purge", ids[0]}, 1, "", "401 Unauthorized"},
		{"purge a malformed ID", []string{"segments", "--api", d.url, "--purge", "xyz", "--token", testToken}, 2, "", "hex"},
		{"purge", []string{"segments", "--api", d.url, "--purge", ids[0], "--token", testToken}, 0, "purged " + ids[0], ""},
		{"purge it again", []string{"segments", "--api", d.url, "--purge", ids[0], "--token", testToken}, 1, "", "404"},
		{"events", []string{"events", "--api", d.url}, 0, "an operator deleted a segment", ""},
		{"events by ID", []string{"events", "--api", d.url, "--id", "114"}, 0, "an operator deleted a segment over the API: remote=", ""},
		{"events by two IDs", []string{"events", "--api", d.url, "--id", "1", "--id", "120"}, 0, "bad or missing token", ""},
		{"events since an hour", []string{"events", "--api", d.url, "--since", "1h", "--id", "1"}, 0, "outpost started", ""},
		{"no events match", []string{"events", "--api", d.url, "--id", "6402"}, 0, "no events", ""},
		{"a bad time", []string{"events", "--api", d.url, "--since", "soon"}, 2, "", "neither an RFC 3339 time"},
		{"no daemon", []string{"events", "--api", "http://" + freeAddr(t)}, 1, "", "is outpost running?"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := cli(t, tt.args...)
			if code != tt.code || !strings.Contains(out, tt.stdout) || !strings.Contains(errOut, tt.stderr) {
				t.Errorf("exit %d (want %d)\nstdout:\n%s\nstderr:\n%s", code, tt.code, out, errOut)
			}
		})
	}
	if _, _, err := client.Segments(context.Background(), "", 10); err != nil {
		t.Fatal(err)
	}
	code, out, _ = cli(t, "events", "--api", d.url, "--json", "--id", "114,120")
	var evs events.Page
	if err := json.Unmarshal([]byte(out), &evs); code != 0 || err != nil || len(evs.Events) != 2 ||
		evs.Events[0].ID != events.SegmentPurged || evs.Events[0].Fields["segment"] != ids[0] || evs.Events[1].ID != events.AuthFailed {
		t.Errorf("events --json: exit %d %v:\n%s", code, err, out)
	}
}

// The event log is on the data partition: a second run shows the first
// run's events, numbered on from them.
func TestEventLogSurvivesRestart(t *testing.T) {
	dataDir := filepath.Join(t.TempDir(), "data")
	d := startDaemon(t, dataDir)
	cli(t, "segments", "--api", d.url, "--purge", strings.Repeat("ab", 32), "--token", "a-wrong-token-123")
	d.stop(t)

	d = startDaemon(t, dataDir)
	code, out, _ := cli(t, "events", "--api", d.url, "--json")
	var page events.Page
	if err := json.Unmarshal([]byte(out), &page); code != 0 || err != nil {
		t.Fatalf("exit %d %v: %s", code, err, out)
	}
	var got []events.ID
	for i := len(page.Events) - 1; i >= 0; i-- {
		got = append(got, page.Events[i].ID)
		if i > 0 && page.Events[i].Seq >= page.Events[i-1].Seq {
			t.Errorf("sequence numbers do not increase: %+v", page.Events)
		}
	}
	want := []events.ID{events.Started, events.AuthFailed, events.Stopped, events.Started}
	if len(got) < len(want) {
		t.Fatalf("events after a restart: %v, want %v first", got, want)
	}
	for i, id := range want {
		if got[i] != id {
			t.Fatalf("events after a restart: %v, want %v first", got, want)
		}
	}
}
