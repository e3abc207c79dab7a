package origin

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/outpost-appliance/outpost/peerdist/pccrc"
)

// Without inline hashing the first peerdist request gets the content with
// MakeHashRequest and starts hashing in the background; once hashed, the
// same request gets content information.
func TestBackgroundHashing(t *testing.T) {
	fx := newFixture(t, nil)
	data := fx.write(t, "a.bin", 150_000, 5)
	resp, body := fx.get(t, "GET", "/a.bin", win8...)
	if resp.Header.Get("Content-Encoding") != "" || !bytes.Equal(body, data) {
		t.Fatal("first request did not get the content")
	}
	if got := resp.Header.Get("X-P2P-PeerDistEx"); got != "MakeHashRequest=true" {
		t.Errorf("X-P2P-PeerDistEx %q", got)
	}
	fx.waitHashed(t, "a.bin", pccrc.V2)
	resp, body = fx.get(t, "GET", "/a.bin", with(win8, "X-P2P-PeerDistEx", "HashRequest=true")...)
	if resp.Header.Get("Content-Encoding") != "peerdist" {
		t.Fatal("hash request after hashing did not get content information")
	}
	checkCI(t, parseCI(t, body), data, 0, uint64(len(data)))
	// A 1.0 client knows no X-P2P-PeerDistEx: no MakeHashRequest for it.
	resp, _ = fx.get(t, "GET", "/a.bin", win7...)
	if resp.Header.Get("Content-Encoding") != "" || resp.Header.Get("X-P2P-PeerDistEx") != "" || resp.Header.Get("X-P2P-PeerDist") != "" {
		t.Errorf("Windows 7's first request: Content-Encoding %q, X-P2P-PeerDist %q, X-P2P-PeerDistEx %q",
			resp.Header.Get("Content-Encoding"), resp.Header.Get("X-P2P-PeerDist"), resp.Header.Get("X-P2P-PeerDistEx"))
	}
	if got := fx.srv.Stats(); got.HashesPending != 2 || got.HashRuns < 1 {
		t.Errorf("stats %+v", got)
	}
}

// Files up to InlineHashLimit are hashed while the first request waits;
// larger ones in the background. Concurrent first requests share one
// hash run.
func TestInlineHashing(t *testing.T) {
	fx := newFixture(t, func(o *Options) { o.InlineHashLimit = 100_000 })
	small := fx.write(t, "small.bin", 100_000, 6)
	fx.write(t, "large.bin", 100_001, 7)

	var wg sync.WaitGroup
	bodies := make([][]byte, 16)
	for i := range bodies {
		wg.Go(func() {
			resp, body := fx.get(t, "GET", "/small.bin", win8...)
			if resp.Header.Get("Content-Encoding") == "peerdist" {
				bodies[i] = body
			}
		})
	}
	wg.Wait()
	for i, b := range bodies {
		if b == nil {
			t.Fatalf("request %d did not get content information", i)
		}
	}
	checkCI(t, parseCI(t, bodies[0]), small, 0, uint64(len(small)))
	if got := fx.srv.Stats().HashRuns; got != 1 {
		t.Errorf("%d hash runs for 16 concurrent requests, want 1", got)
	}
	resp, _ := fx.get(t, "GET", "/large.bin", win8...)
	if resp.Header.Get("Content-Encoding") != "" {
		t.Error("a file over the inline limit was not served plainly first")
	}
}

// Content information survives a restart of the server: nothing is hashed
// again, and the first request after the restart already gets it.
func TestCachePersistsAcrossRestart(t *testing.T) {
	fx := newFixture(t, nil)
	data := fx.write(t, "dir/p.bin", 400_000, 8)
	fx.waitHashed(t, "dir/p.bin", pccrc.V1)
	fx.waitHashed(t, "dir/p.bin", pccrc.V2)
	if got := fx.srv.Stats().HashRuns; got != 2 {
		t.Fatalf("%d hash runs, want 2", got)
	}
	fx.restart(t)
	for _, client := range [][]string{win7, win8} {
		resp, body := fx.get(t, "GET", "/dir/p.bin", client...)
		if resp.Header.Get("Content-Encoding") != "peerdist" {
			t.Fatalf("%v: not served from the cache after a restart", client)
		}
		checkCI(t, parseCI(t, body), data, 0, uint64(len(data)))
	}
	if got := fx.srv.Stats(); got.HashRuns != 0 || got.DiskHits != 2 {
		t.Errorf("after restart: %+v, want no hash run and 2 disk hits", got)
	}
	// A restart with another secret does not use the first one's entries.
	fx.opts.Secret = pccrc.PassphraseSecret("another secret")
	fx.restart(t)
	fx.waitHashed(t, "dir/p.bin", pccrc.V1)
	if got := fx.srv.Stats().HashRuns; got != 1 {
		t.Errorf("another secret: %d hash runs, want 1", got)
	}
}

// A changed file gets new content information and a new ETag, even when
// its size and mtime are restored (ctime changes).
func TestModifiedFileGetsNewContentInformation(t *testing.T) {
	fx := newFixture(t, nil)
	p := filepath.Join(fx.dir, "m.bin")
	old := fx.write(t, "m.bin", 100_000, 9)
	fx.waitHashed(t, "m.bin", pccrc.V2)
	first, _ := fx.get(t, "GET", "/m.bin", win8...)
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond) // let ctime move on coarse clocks
	updated := bytes.Clone(old)
	updated[5000] ^= 0xff
	if err := os.WriteFile(p, updated, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(p, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	resp, body := fx.get(t, "GET", "/m.bin", win8...)
	if resp.Header.Get("Content-Encoding") == "peerdist" {
		t.Fatal("old content information served for a changed file")
	}
	if !bytes.Equal(body, updated) {
		t.Fatal("not the new content")
	}
	if resp.Header.Get("ETag") == first.Header.Get("ETag") {
		t.Error("ETag unchanged")
	}
	fx.waitHashed(t, "m.bin", pccrc.V2)
	resp, body = fx.get(t, "GET", "/m.bin", win8...)
	if resp.Header.Get("Content-Encoding") != "peerdist" {
		t.Fatal("no content information for the new version")
	}
	checkCI(t, parseCI(t, body), updated, 0, uint64(len(updated)))
}

// A damaged cache entry is detected, removed and recomputed.
func TestDamagedCacheEntryIsRecomputed(t *testing.T) {
	damage := map[string]func([]byte) []byte{
		"flipped byte": func(b []byte) []byte { b[len(b)/2] ^= 1; return b },
		"truncated":    func(b []byte) []byte { return b[:len(b)-100] },
		"empty":        func([]byte) []byte { return nil },
		"garbage":      func(b []byte) []byte { return bytes.Repeat([]byte{0xAA}, len(b)) },
	}
	for name, fn := range damage {
		t.Run(name, func(t *testing.T) {
			fx := newFixture(t, nil)
			data := fx.write(t, "d.bin", 300_000, 10)
			fx.waitHashed(t, "d.bin", pccrc.V1)
			entry := fx.srv.disk.path("d.bin", pccrc.V1)
			raw, err := os.ReadFile(entry)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(entry, fn(raw), 0o600); err != nil {
				t.Fatal(err)
			}
			fx.restart(t)
			resp, _ := fx.get(t, "GET", "/d.bin", win7...)
			if resp.Header.Get("Content-Encoding") != "" {
				t.Fatal("content information from a damaged entry")
			}
			fx.waitHashed(t, "d.bin", pccrc.V1)
			resp, body := fx.get(t, "GET", "/d.bin", win7...)
			if resp.Header.Get("Content-Encoding") != "peerdist" {
				t.Fatal("not recomputed")
			}
			checkCI(t, parseCI(t, body), data, 0, uint64(len(data)))
			if got := fx.srv.Stats(); got.DamagedEntries != 1 || got.HashRuns != 1 {
				t.Errorf("stats %+v, want 1 damaged entry and 1 hash run", got)
			}
		})
	}
}

// A file written to while it is hashed gets no content information from
// that run: the stamp taken before reading no longer matches.
func TestFileChangedWhileHashed(t *testing.T) {
	fx := newFixture(t, nil)
	fx.write(t, "c.bin", 200_000, 11)
	f, fi, err := fx.srv.openRegular("c.bin")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	before := stampOf(fi)
	time.Sleep(20 * time.Millisecond)
	// Same size, new bytes: only the timestamps tell.
	if err := os.WriteFile(filepath.Join(fx.dir, "c.bin"), randomBytes(200_000, 12), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = fx.srv.generateLimited(context.Background(), f, cacheKey{"c.bin", pccrc.V2}, before, false)
	if !errors.Is(err, errChanging) {
		t.Fatalf("hashing a file that changed: %v, want errChanging", err)
	}
	// A file that grew is caught by the content length as well.
	g, err := os.OpenFile(filepath.Join(fx.dir, "c.bin"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	g.Write([]byte("more"))
	g.Close()
	if _, err := generate(context.Background(), f, pccrc.V1, before, []byte("k")); !errors.Is(err, errChanging) {
		t.Fatalf("hashing a file that grew: %v, want errChanging", err)
	}
}

// A file whose status changed moments ago is served plainly and hashed
// once it has been left alone for MinFileAge.
func TestRecentFileWaitsToSettle(t *testing.T) {
	const age = 400 * time.Millisecond
	fx := newFixture(t, func(o *Options) { o.MinFileAge = age; o.InlineHashLimit = 1 << 20 })
	data := fx.write(t, "new.bin", 50_000, 13)
	written := time.Now()
	resp, _ := fx.get(t, "GET", "/new.bin", win8...)
	if resp.Header.Get("Content-Encoding") != "" {
		t.Fatal("a file written just now was hashed inline")
	}
	fx.waitHashed(t, "new.bin", pccrc.V2)
	if waited := time.Since(written); waited < age-50*time.Millisecond {
		t.Errorf("hashed %v after writing, want at least %v", waited, age)
	}
	resp, body := fx.get(t, "GET", "/new.bin", win8...)
	if resp.Header.Get("Content-Encoding") != "peerdist" {
		t.Fatal("no content information after settling")
	}
	checkCI(t, parseCI(t, body), data, 0, uint64(len(data)))
}

// At start the cache directory drops entries of files that are gone and
// temporary files left by a crash; entries of present files stay.
func TestCacheCollection(t *testing.T) {
	fx := newFixture(t, nil)
	fx.write(t, "keep.bin", 70_000, 14)
	fx.write(t, "gone.bin", 70_000, 15)
	fx.waitHashed(t, "keep.bin", pccrc.V1)
	fx.waitHashed(t, "gone.bin", pccrc.V1)
	keep, gone := fx.srv.disk.path("keep.bin", pccrc.V1), fx.srv.disk.path("gone.bin", pccrc.V1)
	stale := filepath.Join(fx.srv.disk.dir, tempPrefix+"crash")
	fresh := filepath.Join(fx.srv.disk.dir, tempPrefix+"writing")
	for _, p := range []string{stale, fresh} {
		if err := os.WriteFile(p, []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-2 * staleTempAge)
	os.Chtimes(stale, old, old)
	os.Remove(filepath.Join(fx.dir, "gone.bin"))
	fx.restart(t)
	want := map[string]bool{keep: true, gone: false, stale: false, fresh: true}
	check := func() (errs []string) {
		for p, want := range want {
			if _, err := os.Stat(p); (err == nil) != want {
				errs = append(errs, fmt.Sprintf("%s: exists=%v, want %v", filepath.Base(p), err == nil, want))
			}
		}
		return errs
	}
	// The collection runs in the background after start.
	deadline := time.Now().Add(10 * time.Second)
	for len(check()) > 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	for _, e := range check() {
		t.Error(e)
	}
}

// Prehash hashes every servable file (not dotfiles) at start.
func TestPrehash(t *testing.T) {
	fx := newFixture(t, nil)
	fx.write(t, "one.bin", 10_000, 16)
	fx.write(t, "sub/two.bin", 20_000, 17)
	fx.write(t, ".hidden/three.bin", 30_000, 18)
	fx.put(t, "empty.bin", nil)
	fx.opts.Prehash = true
	fx.restart(t)
	deadline := time.Now().Add(30 * time.Second)
	for fx.srv.Stats().HashRuns < 4 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	fx.srv.Close()
	if got := fx.srv.Stats().HashRuns; got != 4 {
		t.Fatalf("%d hash runs, want 4 (two files, two versions)", got)
	}
	var entries []string
	filepath.WalkDir(fx.srv.disk.dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.Contains(d.Name(), ".v") {
			if rel, ok := entryPath(p); ok {
				entries = append(entries, rel)
			}
		}
		return nil
	})
	if len(entries) != 4 || strings.Contains(strings.Join(entries, " "), "three") {
		t.Errorf("cache entries for %v", entries)
	}
}

// An empty file has no content information: it is always served as is.
func TestEmptyFile(t *testing.T) {
	fx := newFixture(t, func(o *Options) { o.InlineHashLimit = 1 << 20 })
	fx.put(t, "empty.txt", nil)
	resp, body := fx.get(t, "GET", "/empty.txt", win8...)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Encoding") != "" || len(body) != 0 {
		t.Fatalf("status %d, Content-Encoding %q, %d bytes", resp.StatusCode, resp.Header.Get("Content-Encoding"), len(body))
	}
	if err := fx.srv.WaitHashed(context.Background(), "empty.txt", pccrc.V2); !errors.Is(err, errEmpty) {
		t.Errorf("WaitHashed: %v", err)
	}
}
