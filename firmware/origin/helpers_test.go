package origin

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/outpost-appliance/outpost/peerdist/pccrc"
)

var quiet = slog.New(slog.DiscardHandler)

// testSecret is the passphrase of the test servers.
const testSecret = "branch office"

// fixture is a served directory, its cache directory and a server.
type fixture struct {
	dir, cache string
	opts       Options
	srv        *Server
	ts         *httptest.Server
}

// newFixture starts a server over a fresh directory; edit changes the
// options before the server is created.
func newFixture(t testing.TB, edit func(*Options)) *fixture {
	t.Helper()
	fx := &fixture{dir: t.TempDir(), cache: t.TempDir()}
	fx.opts = Options{
		Dir: fx.dir, CacheDir: fx.cache, Secret: pccrc.PassphraseSecret(testSecret), Logger: quiet,
		MinFileAge: -1,
	}
	if edit != nil {
		edit(&fx.opts)
	}
	fx.start(t)
	return fx
}

// start (re)creates the server over the fixture's directories.
func (fx *fixture) start(t testing.TB) {
	t.Helper()
	srv, err := New(fx.opts)
	if err != nil {
		t.Fatal(err)
	}
	fx.srv = srv
	fx.ts = httptest.NewServer(srv)
	t.Cleanup(func() { fx.stop() })
}

func (fx *fixture) stop() {
	if fx.ts != nil {
		fx.ts.Close()
		fx.ts = nil
	}
	if fx.srv != nil {
		fx.srv.Close()
	}
}

// restart stops the server and starts a new one on the same directories.
func (fx *fixture) restart(t testing.TB) {
	t.Helper()
	fx.stop()
	fx.start(t)
}

// write creates a file of the served directory with size pseudo-random
// bytes (seeded by seed) and returns its content.
func (fx *fixture) write(t testing.TB, name string, size int, seed byte) []byte {
	t.Helper()
	data := randomBytes(size, seed)
	fx.put(t, name, data)
	return data
}

func (fx *fixture) put(t testing.TB, name string, data []byte) {
	t.Helper()
	p := filepath.Join(fx.dir, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func randomBytes(size int, seed byte) []byte {
	data := make([]byte, size)
	rand.NewChaCha8([32]byte{seed, byte(size), byte(size >> 8), byte(size >> 16)}).Read(data)
	return data
}

// waitHashed makes the content information of name ready in version v.
func (fx *fixture) waitHashed(t testing.TB, name string, v pccrc.Version) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := fx.srv.WaitHashed(ctx, name, v); err != nil {
		t.Fatal(err)
	}
}

// get sends a request to the fixture's server; pairs are header names
// and values.
func (fx *fixture) get(t testing.TB, method, path string, pairs ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, fx.ts.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(pairs); i += 2 {
		req.Header.Add(pairs[i], pairs[i+1])
	}
	// With Accept-Encoding set, the transport neither asks for gzip on
	// its own nor decodes anything.
	if req.Header.Get("Accept-Encoding") == "" {
		req.Header.Set("Accept-Encoding", "identity")
	}
	resp, err := fx.ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

// serveDirect runs a request through ServeHTTP without a network, for
// paths a client library would clean first.
func (fx *fixture) serveDirect(method, target string, pairs ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, "http://origin.test/", nil)
	req.URL.Path = target
	req.RequestURI = target
	for i := 0; i < len(pairs); i += 2 {
		req.Header.Add(pairs[i], pairs[i+1])
	}
	rec := httptest.NewRecorder()
	fx.srv.ServeHTTP(rec, req)
	return rec
}

// parseCI parses a peerdist body, failing the test if it is not content
// information.
func parseCI(t testing.TB, body []byte) *pccrc.Info {
	t.Helper()
	ci, err := pccrc.Parse(body)
	if err != nil {
		t.Fatalf("body is not content information: %v", err)
	}
	return ci
}

// checkCI verifies content information against the file's bytes and the
// test secret, and that it describes exactly [start, end).
func checkCI(t testing.TB, ci *pccrc.Info, data []byte, start, end uint64) {
	t.Helper()
	if err := ci.Verify(context.Background(), bytes.NewReader(data)); err != nil {
		t.Fatalf("content information does not verify against the file: %v", err)
	}
	if err := ci.CheckSecrets(pccrc.PassphraseSecret(testSecret)); err != nil {
		t.Fatalf("segment secrets: %v", err)
	}
	if s, e := ci.Range(); s != start || e != end {
		t.Fatalf("content information describes [%d, %d), want [%d, %d)", s, e, start, end)
	}
}

// Request headers of the clients of protocols.md §6.
var (
	win7   = []string{"Accept-Encoding", "gzip, deflate, peerdist", "X-P2P-PeerDist", "Version=1.0"}
	win8   = []string{"Accept-Encoding", "gzip, deflate, peerdist", "X-P2P-PeerDist", "Version=1.1", "X-P2P-PeerDistEx", "MinContentInformation=1.0, MaxContentInformation=2.0"}
	win8V1 = []string{"Accept-Encoding", "peerdist", "X-P2P-PeerDist", "Version=1.1", "X-P2P-PeerDistEx", "MinContentInformation=1.0, MaxContentInformation=1.0"}
)

func with(base []string, more ...string) []string {
	return append(append([]string(nil), base...), more...)
}
