package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outpost-appliance/outpost/firmware/api"
	"github.com/outpost-appliance/outpost/firmware/config"
	"github.com/outpost-appliance/outpost/firmware/logging"
)

const exampleFile = "../../outpost.example.toml"

func TestConfigDefault(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"config", "default"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	example, err := os.ReadFile(exampleFile)
	if err != nil {
		t.Fatal(err)
	}
	if out.String() != string(example) || out.String() != config.DefaultFile() {
		t.Error("`outpost config default` differs from firmware/outpost.example.toml")
	}
}

func TestConfigCheck(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.toml")
	os.WriteFile(bad, []byte("[cache]\nmax_size = \"lots\"\n[api]\ntoken = \"0123456789abcdef-secret\"\n"), 0o644)
	good := filepath.Join(dir, "good.toml")
	os.WriteFile(good, []byte("[api]\ntoken = \"0123456789abcdef-secret\"\n"), 0o644)
	tests := []struct {
		name    string
		args    []string
		code    int
		stdout  []string
		stderr  []string
		notSeen string
	}{
		{"the example file", []string{"config", "check", exampleFile}, 0, []string{"OK", "max_age = '28d'", "[hosted_cache]"}, nil, ""},
		{"secrets are redacted", []string{"config", "check", good}, 0, []string{"token = '(redacted)'"}, nil, "0123456789abcdef-secret"},
		{"an override", []string{"config", "check", "--set", "cache.max_size=10GiB", good}, 0, []string{"max_size = '10GiB'"}, nil, ""},
		{"a bad file", []string{"config", "check", bad}, 1, nil, []string{"bad.toml:2:12: cache.max_size: invalid size \"lots\""}, ""},
		{"a bad override", []string{"config", "check", good, "--set", "log.level=loud"}, 1, nil, []string{"--set: log.level: invalid value \"loud\""}, ""},
		{"a missing file", []string{"config", "check", filepath.Join(dir, "none.toml")}, 1, nil, []string{"cannot read the configuration"}, ""},
		{"no file", []string{"config", "check"}, 2, nil, []string{"usage: outpost config"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := run(context.Background(), tt.args, &out, &errOut)
			if code != tt.code {
				t.Errorf("exit %d, want %d; stderr: %s", code, tt.code, errOut.String())
			}
			for _, w := range tt.stdout {
				if !strings.Contains(out.String(), w) {
					t.Errorf("stdout lacks %q:\n%s", w, out.String())
				}
			}
			for _, w := range tt.stderr {
				if !strings.Contains(errOut.String(), w) {
					t.Errorf("stderr lacks %q:\n%s", w, errOut.String())
				}
			}
			if tt.notSeen != "" && strings.Contains(out.String()+errOut.String(), tt.notSeen) {
				t.Errorf("output shows %q", tt.notSeen)
			}
		})
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// lockedBuffer collects the daemon's log while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// `outpost run` serves the status API until it is signalled, then stops
// its services; `outpost status` reads that API. With a bad configuration
// it runs all the same, in safe mode, and says so.
func TestRunAndStatus(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.toml")
	os.WriteFile(bad, []byte("[xdp]\nmode = \"turbo\"\n"), 0o644)
	tests := []struct {
		name       string
		config     string
		statusCode int
		want       []string
	}{
		{"the example configuration", exampleFile, 0, []string{"configuration: " + exampleFile, "api", "hosted-cache", "running", "thumbprint"}},
		{"a bad configuration: safe mode", bad, 3, []string{"SAFE MODE", "bad.toml:2:8: xdp.mode: invalid value \"turbo\"", "running"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := freeAddr(t)
			dataDir := filepath.Join(t.TempDir(), "data")
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var daemonLog lockedBuffer
			exit := make(chan int, 1)
			go func() {
				exit <- run(ctx, []string{"run", "--config", tt.config, "--data-dir", dataDir,
					"--set", "api.listen=" + addr, "--set", "cache.dir=store",
					"--set", "hosted_cache.http_listen=" + freeAddr(t), "--set", "hosted_cache.https_listen=" + freeAddr(t),
					"--set", "peer.listen=" + freeAddr(t), "--set", "hosted_cache.hostname=localhost"}, &daemonLog, &daemonLog)
			}()

			url := "http://" + addr
			deadline := time.Now().Add(10 * time.Second)
			for {
				st, _, err := (&api.Client{BaseURL: url}).Status(ctx)
				if err == nil && st.Ready {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("the daemon never became ready (%v); its log:\n%s", err, daemonLog.String())
				}
				time.Sleep(20 * time.Millisecond)
			}

			var out, errOut bytes.Buffer
			if code := run(ctx, []string{"status", "--api", url}, &out, &errOut); code != tt.statusCode {
				t.Errorf("outpost status exit %d, want %d: %s", code, tt.statusCode, errOut.String())
			}
			for _, w := range tt.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("outpost status lacks %q:\n%s", w, out.String())
				}
			}
			out.Reset()
			if code := run(ctx, []string{"status", "--api", url, "--json"}, &out, &errOut); code != 0 {
				t.Errorf("outpost status --json exit %d", code)
			}
			var st api.Status
			if err := json.Unmarshal(out.Bytes(), &st); err != nil || st.Mode != api.ModeDaemon || !hasServices(st, "api", "hosted-cache") || len(st.TLSThumbprint) != 40 {
				t.Errorf("--json: %v: %s", err, out.String())
			}

			cancel() // as SIGTERM does
			select {
			case code := <-exit:
				if code != 0 {
					t.Errorf("outpost run exited %d", code)
				}
			case <-time.After(15 * time.Second):
				t.Fatal("outpost run did not stop")
			}
			records, err := logging.ReadRing(filepath.Join(dataDir, "log"), 0)
			if err != nil {
				t.Fatal(err)
			}
			ring := string(bytes.Join(records, []byte("\n")))
			for _, w := range []string{`"msg":"outpost starting"`, `"msg":"outpost ready"`, `"msg":"outpost stopped"`} {
				if !strings.Contains(ring, w) {
					t.Errorf("the log ring lacks %s:\n%s", w, ring)
				}
			}
			if !strings.Contains(daemonLog.String(), `msg="outpost ready"`) {
				t.Errorf("console log lacks the ready line:\n%s", daemonLog.String())
			}
		})
	}
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"status", "--api", "http://" + freeAddr(t)}, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "is outpost running?") {
		t.Errorf("status without a daemon: exit %d, %s", code, errOut.String())
	}
}

// hasServices reports whether the status lists the named services.
func hasServices(st api.Status, names ...string) bool {
	for _, name := range names {
		found := false
		for _, s := range st.Services {
			found = found || s.Name == name
		}
		if !found {
			return false
		}
	}
	return true
}
