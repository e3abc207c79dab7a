package origin

import (
	"bytes"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/outpost-appliance/outpost/peerdist/pccrc"
)

// Requests cannot leave the served directory (no "..", no symbolic link
// out of it), never see dotfiles, and directories answer as IIS does with
// directory browsing off.
func TestPathSafety(t *testing.T) {
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "secret.txt"), []byte("outside"), 0o644); err != nil {
		t.Fatal(err)
	}
	fx := newFixture(t, nil)
	data := fx.write(t, "pub/file.bin", 1000, 20)
	fx.put(t, "withindex/index.html", []byte("<h1>index</h1>"))
	fx.put(t, ".env", []byte("PASSWORD=x"))
	fx.put(t, "pub/.git/config", []byte("[core]"))
	fx.put(t, "back\\slash", []byte("odd name"))
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Symlink(filepath.Join(outside, "secret.txt"), filepath.Join(fx.dir, "escape.txt")))
	must(os.Symlink(outside, filepath.Join(fx.dir, "escapedir")))
	must(os.Symlink("../../", filepath.Join(fx.dir, "pub", "up")))
	must(os.Symlink("pub/file.bin", filepath.Join(fx.dir, "inside.bin")))
	must(os.Symlink("/etc/passwd", filepath.Join(fx.dir, "abs")))
	must(syscall.Mkfifo(filepath.Join(fx.dir, "fifo"), 0o644))
	must(os.Mkdir(filepath.Join(fx.dir, "empty"), 0o755))
	must(os.Mkdir(filepath.Join(fx.dir, "a dir"), 0o755))
	must(os.Mkdir(filepath.Join(fx.dir, "evil.example"), 0o755))
	must(os.Mkdir(filepath.Join(fx.dir, "evil.example", "pub"), 0o755))

	tests := []struct {
		method, path string
		status       int
		body         []byte
		location     string
	}{
		{"GET", "/pub/file.bin", 200, data, ""},
		{"GET", "//pub///file.bin", 200, data, ""},
		{"GET", "/pub/./file.bin", 200, data, ""},
		{"GET", "/inside.bin", 200, data, ""},
		{"GET", "/../etc/passwd", 400, nil, ""},
		{"GET", "/pub/../../etc/passwd", 400, nil, ""},
		{"GET", "/pub/../pub/file.bin", 400, nil, ""},
		{"GET", "/..", 400, nil, ""},
		{"GET", "../pub/file.bin", 400, nil, ""},
		{"GET", "pub/file.bin", 400, nil, ""},
		{"GET", "/pub/file.bin\x00.txt", 400, nil, ""},
		{"GET", "/..\\..\\etc\\passwd", 404, nil, ""},
		{"GET", "/back\\slash", 200, []byte("odd name"), ""},
		{"GET", "/escape.txt", 404, nil, ""},
		{"GET", "/escapedir/secret.txt", 404, nil, ""},
		{"GET", "/pub/up/etc/passwd", 404, nil, ""},
		{"GET", "/abs", 404, nil, ""},
		{"GET", "/.env", 404, nil, ""},
		{"GET", "/pub/.git/config", 404, nil, ""},
		{"GET", "/pub/.git/", 404, nil, ""},
		{"GET", "/fifo", 404, nil, ""},
		{"GET", "/missing.bin", 404, nil, ""},
		{"GET", "/pub/file.bin/", 404, nil, ""},
		{"GET", "/", 403, nil, ""},
		{"GET", "/pub/", 403, nil, ""},
		{"GET", "/empty/", 403, nil, ""},
		{"GET", "/pub", 301, nil, "/pub/"},
		{"GET", "/withindex", 301, nil, "/withindex/"},
		{"GET", "//evil.example/pub", 301, nil, "/evil.example/pub/"},
		{"GET", "/a dir", 301, nil, "/a%20dir/"},
		{"GET", "/withindex/", 200, []byte("<h1>index</h1>"), ""},
		{"HEAD", "/pub/file.bin", 200, []byte{}, ""},
		{"POST", "/pub/file.bin", 405, nil, ""},
		{"PUT", "/pub/file.bin", 405, nil, ""},
		{"DELETE", "/pub/file.bin", 405, nil, ""},
		{"OPTIONS", "/pub/file.bin", 405, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+strings.ReplaceAll(tt.path, "\x00", "NUL"), func(t *testing.T) {
			rec := fx.serveDirect(tt.method, tt.path)
			if rec.Code != tt.status {
				t.Fatalf("status %d, want %d (body %q)", rec.Code, tt.status, rec.Body.String())
			}
			if tt.body != nil && !bytes.Equal(rec.Body.Bytes(), tt.body) {
				t.Errorf("body %q", rec.Body.Bytes())
			}
			if bytes.Contains(rec.Body.Bytes(), []byte("outside")) || bytes.Contains(rec.Body.Bytes(), []byte("root:")) {
				t.Fatal("content from outside the served directory")
			}
			if tt.location != "" && rec.Header().Get("Location") != tt.location {
				t.Errorf("Location %q, want %q", rec.Header().Get("Location"), tt.location)
			}
			if tt.status == http.StatusMethodNotAllowed && rec.Header().Get("Allow") != "GET, HEAD" {
				t.Errorf("Allow %q", rec.Header().Get("Allow"))
			}
		})
	}
	// Over a real connection, with the raw request line a client library
	// would have cleaned.
	for _, target := range []string{"/../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/pub/%2e%2e/%2e%2e/etc/passwd", "/%2eenv"} {
		status := rawGet(t, fx.ts.Listener.Addr().String(), target)
		if status != "400" && status != "404" {
			t.Errorf("raw GET %s: status %s", target, status)
		}
	}
}

// rawGet sends a request line as given and returns the status code.
func rawGet(t *testing.T, addr, target string) string {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.Write([]byte("GET " + target + " HTTP/1.1\r\nHost: origin\r\nConnection: close\r\n\r\n"))
	buf := make([]byte, 12)
	n, _ := conn.Read(buf)
	if n < 12 {
		t.Fatalf("raw GET %s: short answer %q", target, buf[:n])
	}
	return string(buf[9:12])
}

func TestCleanPath(t *testing.T) {
	tests := []struct {
		in      string
		rel     string
		dirForm bool
		err     error
	}{
		{"/", ".", true, nil},
		{"/a", "a", false, nil},
		{"/a/", "a", true, nil},
		{"/a//b/./c", "a/b/c", false, nil},
		{"/a/b/", "a/b", true, nil},
		{"/a/../b", "", false, errBadPath},
		{"/.a", "", false, errHidden},
		{"/a/.b/c", "", false, errHidden},
		{"/a/...", "", false, errHidden},
		{"a", "", false, errBadPath},
		{"", "", false, errBadPath},
		{"/a\x00", "", false, errBadPath},
	}
	for _, tt := range tests {
		rel, dirForm, err := cleanPath(tt.in)
		if rel != tt.rel || dirForm != tt.dirForm || err != tt.err {
			t.Errorf("cleanPath(%q) = %q, %v, %v; want %q, %v, %v", tt.in, rel, dirForm, err, tt.rel, tt.dirForm, tt.err)
		}
	}
}

// The cache directory may not lie inside the served directory.
func TestCacheDirInsideServedDirIsRefused(t *testing.T) {
	dir := t.TempDir()
	for _, cache := range []string{dir, filepath.Join(dir, ".cache"), filepath.Join(dir, "sub", "ci")} {
		_, err := New(Options{Dir: dir, CacheDir: cache, Secret: []byte("k"), Logger: quiet})
		if err == nil {
			t.Errorf("cache directory %s inside %s accepted", cache, dir)
		}
	}
	// A sibling whose name starts like the served directory is fine.
	srv, err := New(Options{Dir: dir, CacheDir: dir + "-cache", Secret: []byte("k"), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	srv.Close()
	os.RemoveAll(dir + "-cache")
}

func TestNewRejects(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	os.WriteFile(file, nil, 0o644)
	cache := t.TempDir()
	for name, o := range map[string]Options{
		"no dir":       {Secret: []byte("k"), CacheDir: cache},
		"no secret":    {Dir: dir, CacheDir: cache},
		"missing dir":  {Dir: filepath.Join(dir, "nope"), Secret: []byte("k"), CacheDir: cache},
		"file as dir":  {Dir: file, Secret: []byte("k"), CacheDir: cache},
		"version 3":    {Dir: dir, Secret: []byte("k"), CacheDir: cache, Versions: []pccrc.Version{3}},
		"cache a file": {Dir: dir, Secret: []byte("k"), CacheDir: file},
	} {
		o.Logger = quiet
		if srv, err := New(o); err == nil {
			srv.Close()
			t.Errorf("%s: accepted", name)
		}
	}
}
