package origincmd

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outpost-appliance/outpost/firmware/cli"
	"github.com/outpost-appliance/outpost/peerdist/pccrc"
	"github.com/outpost-appliance/outpost/peerdist/pccrtp"
)

func TestHelp(t *testing.T) {
	var stdout bytes.Buffer
	if code := Run(context.Background(), []string{"help"}, &stdout, io.Discard); code != cli.ExitOK || !strings.Contains(stdout.String(), "usage: outpost origin") {
		t.Errorf("help: exit %d, %q", code, stdout.String())
	}
}

func TestUsageErrors(t *testing.T) {
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "secret")
	os.WriteFile(secretFile, []byte("branch office\n"), 0o600)
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, []byte("\n"), 0o600)
	tests := []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"no dir", []string{"--secret", "x"}, cli.ExitUsage, "--dir is required"},
		{"no secret", []string{"--dir", dir}, cli.ExitUsage, "one of --secret"},
		{"two secrets", []string{"--dir", dir, "--secret", "x", "--secret-file", secretFile}, cli.ExitUsage, "one of --secret"},
		{"bad hex", []string{"--dir", dir, "--secret-hex", "zz"}, cli.ExitUsage, "--secret-hex"},
		{"bad versions", []string{"--dir", dir, "--secret", "x", "--versions", "1,3"}, cli.ExitUsage, "--versions"},
		{"bad size", []string{"--dir", dir, "--secret", "x", "--inline-hash-limit", "lots"}, cli.ExitUsage, "--inline-hash-limit"},
		{"bad level", []string{"--dir", dir, "--secret", "x", "--log-level", "loud"}, cli.ExitUsage, "--log-level"},
		{"bad workers", []string{"--dir", dir, "--secret", "x", "--hash-workers", "0"}, cli.ExitUsage, "--hash-workers"},
		{"stray argument", []string{"--dir", dir, "--secret", "x", "extra"}, cli.ExitUsage, "unexpected"},
		{"unknown flag", []string{"--dir", dir, "--secret", "x", "--nope"}, cli.ExitUsage, "nope"},
		{"empty secret file", []string{"--dir", dir, "--secret-file", empty, "--cache-dir", t.TempDir()}, cli.ExitUsage, "empty"},
		{"missing dir", []string{"--dir", filepath.Join(dir, "nope"), "--secret", "x", "--cache-dir", t.TempDir()}, cli.ExitInternal, "nope"},
		{"cache inside dir", []string{"--dir", dir, "--secret", "x", "--cache-dir", filepath.Join(dir, "ci")}, cli.ExitInternal, "inside"},
		{"--help", []string{"--help"}, cli.ExitOK, "usage: outpost origin"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			code := Run(context.Background(), tt.args, io.Discard, &stderr)
			if code != tt.code || !strings.Contains(stderr.String(), tt.msg) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, stderr.String(), tt.code, tt.msg)
			}
		})
	}
}

// syncBuffer is a bytes.Buffer safe for the server's log and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// The command serves a directory on a real listener, answers a Windows 8
// client with content information made with the secret from a file, logs
// each request, and stops cleanly when its context ends.
func TestServe(t *testing.T) {
	dir, cache := t.TempDir(), t.TempDir()
	data := bytes.Repeat([]byte("outpost origin "), 20000)
	os.WriteFile(filepath.Join(dir, "file.bin"), data, 0o644)
	secretFile := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(secretFile, []byte("branch office\r\n"), 0o600)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stderr syncBuffer
	addrc := make(chan net.Addr, 1)
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"--dir", dir, "--listen", "127.0.0.1:0", "--secret-file", secretFile,
			"--cache-dir", cache, "--inline-hash-limit", "1MiB", "--versions", "2"}, &stderr, func(a net.Addr) { addrc <- a })
	}()
	var addr net.Addr
	select {
	case addr = <-addrc:
	case code := <-done:
		t.Fatalf("exited %d: %s", code, stderr.String())
	}
	// The file was written just now: wait until it has settled (3 s) and
	// can be hashed.
	time.Sleep(3100 * time.Millisecond)
	req, _ := http.NewRequest("GET", "http://"+addr.String()+"/file.bin", nil)
	pccrtp.IPXERequest().SetHeaders(req.Header)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.Header.Get("Content-Encoding") != "peerdist" {
		t.Fatalf("no content information: %v\n%s", resp.Header, stderr.String())
	}
	ci, err := pccrc.Parse(body)
	if err != nil || ci.Version != pccrc.V2 {
		t.Fatalf("content information %v, %v", ci, err)
	}
	if err := ci.CheckSecrets(utf16le("branch office")); err != nil {
		t.Fatal(err)
	}
	if err := ci.Verify(context.Background(), bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case code := <-done:
		if code != cli.ExitOK {
			t.Fatalf("exit %d: %s", code, stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("did not stop")
	}
	log := stderr.String()
	for _, want := range []string{"origin: listening", "origin: request", "path=/file.bin", "encoding=peerdist", "origin: stopped"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
}

func utf16le(s string) []byte {
	var b []byte
	for _, r := range s {
		b = append(b, byte(r), byte(r>>8))
	}
	return b
}
