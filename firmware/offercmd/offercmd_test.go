package offercmd

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/outpost-appliance/outpost/cache/hostedcache"
	"github.com/outpost-appliance/outpost/cache/store"
	"github.com/outpost-appliance/outpost/firmware/cli"
	"github.com/outpost-appliance/outpost/firmware/getcmd"
	"github.com/outpost-appliance/outpost/peerdist/pccrc"
)

func storeOptions(dir string) store.Options {
	opts := store.DefaultOptions(dir)
	opts.Logger = slog.New(slog.DiscardHandler)
	return opts
}

// hostedCache runs the real hosted-cache service on loopback ports.
type hostedCache struct {
	svc    *hostedcache.Service
	cancel context.CancelFunc
	done   chan error
}

func startHostedCache(t *testing.T, dir string) *hostedCache {
	t.Helper()
	svc := hostedcache.New(hostedcache.Config{
		Store:       storeOptions(filepath.Join(dir, "store")),
		HTTPListen:  "127.0.0.1:0",
		HTTPSListen: "127.0.0.1:0",
		PeerListen:  "127.0.0.1:0",
		Hostname:    "localhost",
		StateDir:    dir,
		Logger:      slog.New(slog.DiscardHandler),
	})
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	hc := &hostedCache{svc: svc, cancel: cancel, done: make(chan error, 1)}
	go func() { hc.done <- svc.Run(ctx, func() { close(ready) }) }()
	select {
	case <-ready:
	case err := <-hc.done:
		t.Fatalf("hosted cache did not start: %v", err)
	}
	t.Cleanup(hc.stop)
	return hc
}

func (hc *hostedCache) stop() {
	if hc.cancel != nil {
		hc.cancel()
		<-hc.done
		hc.cancel = nil
	}
}

func (hc *hostedCache) addr(server string) string { return hc.svc.Addr(server).String() }

func writeContent(t *testing.T, dir string, version pccrc.Version, size int) (dataPath, ciPath string, data []byte) {
	t.Helper()
	data = make([]byte, size)
	rand.NewChaCha8([32]byte{byte(size), byte(version)}).Read(data)
	var ci *pccrc.Info
	var err error
	if version == pccrc.V1 {
		ci, err = pccrc.GenerateV1(context.Background(), bytes.NewReader(data), pccrc.SHA256, []byte("branch"))
	} else {
		ci, err = pccrc.GenerateV2(context.Background(), bytes.NewReader(data), []byte("branch"))
	}
	if err != nil {
		t.Fatal(err)
	}
	raw, err := ci.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	dataPath, ciPath = filepath.Join(dir, "data"), filepath.Join(dir, "data.ci")
	os.WriteFile(dataPath, data, 0o644)
	os.WriteFile(ciPath, raw, 0o644)
	return dataPath, ciPath, data
}

func runOffer(t *testing.T, args ...string) Result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	if code := Run(context.Background(), append(args, "--json", "--timeout", "30s"), &stdout, &stderr); code != cli.ExitOK {
		t.Fatalf("offer %q exited %d: %s", args, code, stderr.String())
	}
	var res Result
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		t.Fatalf("offer printed %q: %v", stdout.String(), err)
	}
	return res
}

func runGet(t *testing.T, from, ciPath, out string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	if code := getcmd.Run(context.Background(), []string{"--from", from, "--ci", ciPath, "-o", out}, &stdout, &stderr); code != cli.ExitOK {
		t.Fatalf("get exited %d: %s", code, stderr.String())
	}
}

// The heart of the product, end to end over loopback: a client offers
// (v1.0 over HTTPS as Windows 7 does, v2.0 over HTTP as Windows 8+ does),
// the hosted cache pulls and stores, and `get` retrieves byte-identical
// content from it, for V1 and V2 content of several sizes.
func TestOfferPullServe(t *testing.T) {
	hc := startHostedCache(t, t.TempDir())
	for _, tc := range []struct {
		name    string
		version pccrc.Version
		size    int
		pchc    string
	}{
		{"v1 content, PCHC v1 over HTTPS, 1 byte", pccrc.V1, 1, "1"},
		{"v1 content, PCHC v1 over HTTPS, 1 block", pccrc.V1, 65536, "1"},
		{"v1 content, PCHC v1 over HTTPS, many blocks", pccrc.V1, 700_000, "1"},
		{"v1 content, PCHC v2 over HTTP, many blocks", pccrc.V1, 300_000, "2"},
		{"v1 content, PCHC v2 over HTTP, 2 segments", pccrc.V1, pccrc.SegmentSizeV1 + 100_000, "2"},
		{"v2 content, PCHC v2 over HTTP, 1 byte", pccrc.V2, 1, "2"},
		{"v2 content, PCHC v2 over HTTP, many segments", pccrc.V2, 2_000_000, "2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			dataPath, ciPath, data := writeContent(t, dir, tc.version, tc.size)
			args := []string{"--to", hc.addr("http"), "--version", tc.pchc, "--ci", ciPath, "--data", dataPath, "--listen", "127.0.0.1:0", "--tag", "BITS-4.0"}
			if tc.pchc == "1" {
				args = []string{"--to", hc.addr("https"), "--https", "--thumbprint", hc.svc.Thumbprint(), "--version", "1", "--ci", ciPath, "--data", dataPath, "--listen", "127.0.0.1:0"}
			}
			res := runOffer(t, args...)
			if res.BlocksPulled != res.Blocks {
				t.Errorf("pulled %d of %d blocks", res.BlocksPulled, res.Blocks)
			}
			out := filepath.Join(dir, "out")
			runGet(t, hc.addr("peer"), ciPath, out)
			if got, _ := os.ReadFile(out); !bytes.Equal(got, data) {
				t.Errorf("retrieved content differs (%d bytes, want %d)", len(got), len(data))
			}
			// Offering again pulls nothing: the cache holds it all.
			if again := runOffer(t, args...); again.BlocksPulled != 0 {
				t.Errorf("second offer pulled %d blocks", again.BlocksPulled)
			}
		})
	}
	stats := hc.svc.Stats()
	if stats["BITS-4.0"].Offers == 0 || stats["BITS-4.0"].BytesPulled == 0 || stats["Other"].BytesServed == 0 {
		t.Errorf("per-tag statistics: %+v", stats)
	}
}

// A restart of the hosted cache between pull and serve still serves.
func TestServeAfterRestart(t *testing.T) {
	dir := t.TempDir()
	hc := startHostedCache(t, dir)
	dataPath, ciPath, data := writeContent(t, t.TempDir(), pccrc.V1, 500_000)
	runOffer(t, "--to", hc.addr("http"), "--version", "2", "--ci", ciPath, "--data", dataPath, "--listen", "127.0.0.1:0")
	hc.stop()
	os.Remove(dataPath) // the offering client is gone too
	hc = startHostedCache(t, dir)
	out := filepath.Join(dir, "out")
	runGet(t, hc.addr("http"), ciPath, out)
	if got, _ := os.ReadFile(out); !bytes.Equal(got, data) {
		t.Error("content differs after a restart")
	}
}

// An offering client whose data does not match the hashes it sent gets
// nothing stored: offer times out naming how much is held.
func TestCorruptOfferStoresNothing(t *testing.T) {
	hc := startHostedCache(t, t.TempDir())
	dir := t.TempDir()
	dataPath, ciPath, data := writeContent(t, dir, pccrc.V1, 200_000)
	corrupt := bytes.Clone(data)
	corrupt[70_000] ^= 1 // block 1
	os.WriteFile(dataPath, corrupt, 0o644)
	var stdout, stderr bytes.Buffer
	code := Run(context.Background(), []string{"--to", hc.addr("https"), "--https", "--insecure", "--version", "1",
		"--ci", ciPath, "--data", dataPath, "--listen", "127.0.0.1:0", "--timeout", "3s"}, &stdout, &stderr)
	if code != cli.ExitFailed || !strings.Contains(stderr.String(), "holds 1 of 4 blocks") {
		t.Errorf("exit %d: %s", code, stderr.String())
	}
}

func TestOfferUsage(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"--to", "x", "--ci", "y"},
		{"--to", "x", "--ci", "y", "--data", "z", "--version", "3"},
		{"--to", "x", "--ci", "y", "--data", "z", "--insecure"},
		{"--to", "x", "--ci", "y", "--data", "z", "--tag", "a-tag-that-is-too-long"},
	} {
		var stdout, stderr bytes.Buffer
		if code := Run(context.Background(), args, &stdout, &stderr); code != cli.ExitUsage {
			t.Errorf("%q: exit %d", args, code)
		}
	}
}
