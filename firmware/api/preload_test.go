package api

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/outpost-appliance/outpost/cache/preload"
	"github.com/outpost-appliance/outpost/cache/preload/window"
	"github.com/outpost-appliance/outpost/cache/store"
	"github.com/outpost-appliance/outpost/firmware/config"
	"github.com/outpost-appliance/outpost/firmware/origin"
	"github.com/outpost-appliance/outpost/peerdist/pccrc"
)

const branchSecret = "branch office"

// preloadFixture is an API server with a running preload service over a
// real store, and an origin serving one file.
type preloadFixture struct {
	ts      *httptest.Server
	svc     *preload.Service
	st      *store.Store
	origin  string
	data    []byte
	client  *Client
	secret  []byte
	cleanup func()
}

func newPreloadFixture(t *testing.T, contentSecret string) *preloadFixture {
	t.Helper()
	f := &preloadFixture{secret: pccrc.PassphraseSecret(branchSecret)}
	dir := t.TempDir()
	f.data = make([]byte, 300_000)
	rand.NewChaCha8([32]byte{7}).Read(f.data)
	os.WriteFile(filepath.Join(dir, "app.msi"), f.data, 0o644)
	o, err := origin.New(origin.Options{Dir: dir, Secret: f.secret, CacheDir: t.TempDir(), Logger: quiet, InlineHashLimit: 1 << 30, MinFileAge: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { o.Close() })
	web := httptest.NewServer(o)
	t.Cleanup(web.Close)
	f.origin = web.URL

	opts := store.DefaultOptions(t.TempDir())
	opts.Logger = quiet
	if f.st, err = store.Open(context.Background(), opts); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.st.Close() })
	var secret []byte
	if contentSecret != "" {
		secret = pccrc.PassphraseSecret(contentSecret)
	}
	f.svc = preload.New(preload.Options{Store: func() preload.Store { return f.st }, Secret: secret, Logger: quiet, MaxAttempts: 1})
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	done := make(chan struct{})
	go func() { f.svc.Run(ctx, func() { close(ready) }); close(done) }()
	<-ready
	t.Cleanup(func() { cancel(); <-done })
	srv := New(Options{Version: "v9", Mode: ModeDaemon, Config: config.Default(), Token: config.NewSecret(testToken),
		ReadOnlyAnonymous: true, Preload: f.svc, Logger: quiet})
	f.ts = httptest.NewServer(srv)
	t.Cleanup(f.ts.Close)
	f.client = &Client{BaseURL: f.ts.URL, Token: testToken}
	return f
}

func wantAPIError(t *testing.T, err error, code int, text string) {
	t.Helper()
	var e *APIError
	if !errors.As(err, &e) || e.Code != code || !strings.Contains(e.Message, text) {
		t.Errorf("got %v, want %d with %q", err, code, text)
	}
}

func TestPreloadEndpoints(t *testing.T) {
	f := newPreloadFixture(t, "")
	ctx := context.Background()
	url := f.origin + "/app.msi"

	// Changes need the token.
	anon := &Client{BaseURL: f.ts.URL}
	_, _, err := anon.AddPreload(ctx, preload.Spec{URL: url})
	wantAPIError(t, err, http.StatusUnauthorized, "bearer token")
	_, err = anon.CancelPreload(ctx, "x")
	wantAPIError(t, err, http.StatusUnauthorized, "bearer token")

	// Bad requests.
	_, _, err = f.client.AddPreload(ctx, preload.Spec{URL: "ftp://x/y"})
	wantAPIError(t, err, http.StatusBadRequest, "http:// or https://")
	_, _, err = f.client.AddPreload(ctx, preload.Spec{URL: url, Versions: []int{3}})
	wantAPIError(t, err, http.StatusBadRequest, "version 3")
	post := func(body string) (int, error) {
		_, code, err := f.client.send(ctx, "POST", "preload", nil, strings.NewReader(body), int64(len(body)), "application/json", time.Second)
		return code, err
	}
	if code, err := post(`{"url": "` + url + `", "speed": 5}`); code != http.StatusBadRequest || err == nil || !strings.Contains(err.Error(), "speed") {
		t.Errorf("unknown field: %d %v", code, err)
	}
	if code, err := post(`{"url": "` + url + `", "limit": "fast"}`); code != http.StatusBadRequest || err == nil || !strings.Contains(err.Error(), "invalid bandwidth") {
		t.Errorf("bad limit: %d %v", code, err)
	}

	// A job: created (201), the same again (200), progress to completion.
	j, added, err := f.client.AddPreload(ctx, preload.Spec{URL: url, Versions: []int{1, 2}, Limit: 100_000_000})
	if err != nil || !added || j.State.Finished() {
		t.Fatalf("add: %v %v %+v", err, added, j)
	}
	deadline := time.Now().Add(30 * time.Second)
	for !j.State.Finished() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
		if j, _, err = f.client.PreloadJob(ctx, j.ID); err != nil {
			t.Fatal(err)
		}
	}
	if j.State != preload.Completed || j.Size != uint64(len(f.data)) || j.Progress != 1 || j.Limit != 100_000_000 || len(j.Versions) != 2 {
		t.Fatalf("job: %+v", j)
	}
	list, raw, err := f.client.PreloadJobs(ctx)
	if err != nil || !list.Running || len(list.Jobs) != 1 || list.Jobs[0].ID != j.ID ||
		!bytes.Contains(raw, []byte(`"limit": "100Mbit/s"`)) || !bytes.Contains(raw, []byte(`"state": "completed"`)) {
		t.Errorf("list: %v %s", err, raw)
	}
	_, err = f.client.CancelPreload(ctx, j.ID)
	wantAPIError(t, err, http.StatusConflict, "already finished")
	_, err = f.client.CancelPreload(ctx, "nope")
	wantAPIError(t, err, http.StatusNotFound, "no such preload job")
	_, _, err = f.client.PreloadJob(ctx, "nope")
	if err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("unknown job: %v", err)
	}

	// A job that waits for its window can be cancelled.
	h := time.Now().UTC().Hour()
	closed, err := window.Parse(fmt.Sprintf("%02d:00-%02d:00 UTC", (h+2)%24, (h+3)%24))
	if err != nil {
		t.Fatal(err)
	}
	w, _, err := f.svc.Add(preload.Spec{URL: url + "?later", Window: closed})
	if err != nil {
		t.Fatal(err)
	}
	c, err := f.client.CancelPreload(ctx, w.ID)
	if err != nil || c.State != preload.Cancelled {
		t.Errorf("cancel: %v %+v", err, c)
	}
}

func TestPreloadEndpointsWithoutTheService(t *testing.T) {
	srv := New(Options{Version: "v9", Mode: ModeDaemon, Config: config.Default(), Token: config.NewSecret(testToken), ReadOnlyAnonymous: true, Logger: quiet})
	ts := httptest.NewServer(srv)
	defer ts.Close()
	c := &Client{BaseURL: ts.URL, Token: testToken}
	list, _, err := c.PreloadJobs(context.Background())
	if err != nil || list.Running || list.Jobs == nil || len(list.Jobs) != 0 {
		t.Errorf("list: %v %+v", err, list)
	}
	_, _, err = c.AddPreload(context.Background(), preload.Spec{URL: "http://x/f"})
	wantAPIError(t, err, http.StatusServiceUnavailable, "not running")
	_, err = c.InjectBegin(context.Background(), "f", []byte{1})
	wantAPIError(t, err, http.StatusServiceUnavailable, "not running")
}

func TestInjectEndpoints(t *testing.T) {
	ctx := context.Background()
	disabled := newPreloadFixture(t, "")
	ci, _ := pccrc.GenerateV2(ctx, bytes.NewReader(disabled.data), disabled.secret)
	raw, _ := ci.MarshalBinary()
	_, err := disabled.client.InjectBegin(ctx, "app.msi", raw)
	wantAPIError(t, err, http.StatusForbidden, "content_secret")

	f := newPreloadFixture(t, branchSecret)
	_, err = (&Client{BaseURL: f.ts.URL}).InjectBegin(ctx, "app.msi", raw)
	wantAPIError(t, err, http.StatusUnauthorized, "bearer token")
	_, err = f.client.InjectBegin(ctx, "app.msi", []byte("not content information"))
	wantAPIError(t, err, http.StatusBadRequest, "content information")
	wrong, _ := pccrc.GenerateV2(ctx, bytes.NewReader(f.data), pccrc.PassphraseSecret("another secret"))
	wrongRaw, _ := wrong.MarshalBinary()
	_, err = f.client.InjectBegin(ctx, "app.msi", wrongRaw)
	wantAPIError(t, err, http.StatusForbidden, "not made with this appliance's content server secret")

	plan, err := f.client.InjectBegin(ctx, "app.msi", raw)
	if err != nil || plan.Complete || plan.MissingBytes != uint64(len(f.data)) || len(plan.Missing) != 1 || plan.Segments != len(ci.Segments) {
		t.Fatalf("plan: %v %+v", err, plan)
	}
	_, err = f.client.InjectPut(ctx, "0000", 0, bytes.NewReader(f.data), int64(len(f.data)))
	wantAPIError(t, err, http.StatusNotFound, "send the content information again")
	_, _, err = f.client.send(ctx, "PUT", "inject/"+plan.Session, nil, bytes.NewReader(f.data), int64(len(f.data)), "application/octet-stream", 0)
	wantAPIError(t, err, http.StatusBadRequest, "offset")
	_, err = f.client.InjectPut(ctx, plan.Session, 0, bytes.NewReader(f.data), int64(len(f.data))+1)
	if err == nil {
		t.Error("a range past the end was accepted")
	}
	bad := bytes.Clone(f.data)
	bad[len(bad)-10] ^= 1
	_, err = f.client.InjectPut(ctx, plan.Session, 0, bytes.NewReader(bad), int64(len(bad)))
	wantAPIError(t, err, http.StatusUnprocessableEntity, "does not match its content information")
	// The good data, in two pieces cut at a segment boundary.
	cut := ci.Segments[1].Offset
	r1, err := f.client.InjectPut(ctx, plan.Session, 0, bytes.NewReader(f.data[:cut]), int64(cut))
	if err != nil || r1.Complete {
		t.Fatalf("first piece: %v %+v", err, r1)
	}
	r2, err := f.client.InjectPut(ctx, plan.Session, cut, bytes.NewReader(f.data[cut:]), int64(len(f.data))-int64(cut))
	if err != nil || !r2.Complete || r2.Remaining != 0 || r2.StoredTotal != len(ci.Segments) {
		t.Fatalf("second piece: %v %+v", err, r2)
	}
	again, err := f.client.InjectBegin(ctx, "app.msi", raw)
	if err != nil || !again.Complete || again.MissingBytes != 0 || again.BlocksHeld != len(ci.Segments) {
		t.Errorf("after the upload: %v %+v", err, again)
	}
	if st := f.svc.Stats().Inject; st.Blocks != uint64(len(ci.Segments)) || st.Refused != 2 || st.Completed != 2 {
		t.Errorf("inject stats %+v", st)
	}
}
