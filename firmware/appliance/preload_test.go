package appliance

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/outpost-appliance/outpost/cache/preload"
	"github.com/outpost-appliance/outpost/cache/preload/window"
	"github.com/outpost-appliance/outpost/firmware/api"
	"github.com/outpost-appliance/outpost/firmware/config"
	"github.com/outpost-appliance/outpost/firmware/events"
	"github.com/outpost-appliance/outpost/firmware/getcmd"
	"github.com/outpost-appliance/outpost/firmware/injectcmd"
	"github.com/outpost-appliance/outpost/firmware/internal/chromium"
	"github.com/outpost-appliance/outpost/firmware/origin"
	"github.com/outpost-appliance/outpost/firmware/preloadcmd"
	"github.com/outpost-appliance/outpost/peerdist/pccrc"
	"github.com/outpost-appliance/outpost/peerdist/pccrtp"
)

const contentSecret = "branch office"

// startOutpost runs the appliance's services as `outpost run` does, on
// loopback ports, with the configuration tune changes.
func startOutpost(t *testing.T, tune func(*config.Config)) (apiURL, hostedHTTP string) {
	t.Helper()
	cfg := config.Default()
	cfg.API.Listen = config.ListenAddr(freeAddr(t))
	cfg.API.Token = config.NewSecret(testToken)
	cfg.HostedCache.HTTPListen = config.ListenAddr(freeAddr(t))
	cfg.HostedCache.HTTPSListen = ""
	cfg.Peer.Listen = config.ListenAddr(freeAddr(t))
	cfg.Leader.RelayListen = config.ListenAddr(freeAddr(t))
	cfg.Time.NTP = nil
	if tune != nil {
		tune(cfg)
	}
	app, err := New(Options{Version: "v0.9.0-test", Mode: api.ModeDaemon, Config: cfg, ConfigSource: "test",
		DataDir: t.TempDir(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := app.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		stop, done := context.WithTimeout(context.Background(), 30*time.Second)
		defer done()
		app.Stop(stop)
	})
	apiURL = "http://" + string(cfg.API.Listen)
	client := &api.Client{BaseURL: apiURL, Token: testToken}
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, _, err := client.Cache(ctx)
		p, _, perr := client.PreloadJobs(ctx)
		if err == nil && perr == nil && c.Running && p.Running {
			return apiURL, string(cfg.HostedCache.HTTPListen)
		}
		if time.Now().After(deadline) {
			t.Fatal("the hosted cache or the preload service never came up")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func randomFile(t *testing.T, path string, size int, seed byte) []byte {
	t.Helper()
	data := make([]byte, size)
	rand.NewChaCha8([32]byte{seed}).Read(data)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return data
}

// getFromCache retrieves the content ci describes from the hosted cache
// as `outpost get` does (MS-PCCRR, every block decrypted and verified) and
// returns the bytes.
func getFromCache(t *testing.T, hostedHTTP string, ci *pccrc.Info) []byte {
	t.Helper()
	dir := t.TempDir()
	raw, err := ci.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	ciPath, out := filepath.Join(dir, "f.ci"), filepath.Join(dir, "out")
	os.WriteFile(ciPath, raw, 0o644)
	var msg bytes.Buffer
	if code := getcmd.Run(context.Background(), []string{"--from", hostedHTTP, "--ci", ciPath, "-o", out}, &msg, &msg); code != 0 {
		t.Fatalf("outpost get: exit %d: %s", code, msg.String())
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func eventIDs(t *testing.T, apiURL string) map[events.ID]int {
	t.Helper()
	page, _, err := (&api.Client{BaseURL: apiURL, Token: testToken}).Events(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[events.ID]int{}
	for _, e := range page.Events {
		ids[e.ID]++
	}
	return ids
}

// inject runs `outpost inject` and returns its exit code, its JSON lines
// and its error output.
func inject(t *testing.T, apiURL string, args ...string) (int, []injectcmd.Result, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := injectcmd.Run(context.Background(), append([]string{"--api", apiURL, "--token", testToken, "--json"}, args...), &stdout, &stderr)
	var results []injectcmd.Result
	dec := json.NewDecoder(&stdout)
	for {
		var r injectcmd.Result
		if err := dec.Decode(&r); err != nil {
			break
		}
		results = append(results, r)
	}
	return code, results, stderr.String()
}

// outpost inject end to end: files hashed with the content servers'
// secret go through the API into the store, and a client that has the
// content information (as the content server would send it) gets them
// byte for byte from the hosted cache, V1 and V2. Again, nothing is sent;
// after a purge, only the purged segment; with the wrong secret, refused.
func TestInjectEndToEnd(t *testing.T) {
	apiURL, hostedHTTP := startOutpost(t, func(c *config.Config) { c.Preloading.ContentSecret = config.NewSecret(contentSecret) })
	dir := t.TempDir()
	files := map[string][]byte{
		"usb/apps/setup.msi":   randomFile(t, filepath.Join(dir, "usb/apps/setup.msi"), 700_000, 1),
		"usb/drivers/nic.cab":  randomFile(t, filepath.Join(dir, "usb/drivers/nic.cab"), 3*65536+5, 2),
		"usb/os/boot-tiny.wim": randomFile(t, filepath.Join(dir, "usb/os/boot-tiny.wim"), 1000, 3),
	}
	code, results, stderr := inject(t, apiURL, "--secret", contentSecret, "--version", "1,2", filepath.Join(dir, "usb"))
	if code != 0 || len(results) != 2*len(files) {
		t.Fatalf("inject: exit %d, %d results: %s", code, len(results), stderr)
	}
	for _, r := range results {
		if !r.Complete || r.SentBytes != r.Size || r.HeldBefore != 0 || r.Stored == 0 {
			t.Errorf("%+v", r)
		}
	}
	secret := pccrc.PassphraseSecret(contentSecret)
	for name, data := range files {
		for _, v := range []pccrc.Version{pccrc.V1, pccrc.V2} {
			var ci *pccrc.Info
			var err error
			if v == pccrc.V1 {
				ci, err = pccrc.GenerateV1(context.Background(), bytes.NewReader(data), pccrc.SHA256, secret)
			} else {
				ci, err = pccrc.GenerateV2(context.Background(), bytes.NewReader(data), secret)
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := getFromCache(t, hostedHTTP, ci); !bytes.Equal(got, data) {
				t.Errorf("%s V%d: the cache served %d bytes that differ from the file (%d bytes)", name, v, len(got), len(data))
			}
		}
	}
	if ids := eventIDs(t, apiURL); ids[events.InjectCompleted] != 2*len(files) {
		t.Errorf("inject-completed events: %v", ids)
	}

	// Again: everything is held, nothing is sent.
	code, results, stderr = inject(t, apiURL, "--secret", contentSecret, filepath.Join(dir, "usb/apps/setup.msi"))
	if code != 0 || len(results) != 1 || results[0].SentBytes != 0 || results[0].HeldBefore != results[0].Size || !results[0].Complete {
		t.Fatalf("second inject: exit %d, %+v: %s", code, results, stderr)
	}

	// Resumable: purge one V2 segment; only its bytes are sent again.
	ci, _ := pccrc.GenerateV2(context.Background(), bytes.NewReader(files["usb/apps/setup.msi"]), secret)
	client := &api.Client{BaseURL: apiURL, Token: testToken}
	if err := client.DeleteSegment(context.Background(), hex.EncodeToString(ci.ID(1))); err != nil {
		t.Fatal(err)
	}
	code, results, stderr = inject(t, apiURL, "--secret", contentSecret, filepath.Join(dir, "usb/apps/setup.msi"))
	if code != 0 || results[0].SentBytes != uint64(ci.Segments[1].Size) || results[0].Stored != 1 {
		t.Fatalf("after a purge: exit %d, %+v (segment 1 is %d bytes): %s", code, results, ci.Segments[1].Size, stderr)
	}

	// The wrong secret: refused, saying why.
	other := filepath.Join(dir, "other.bin")
	randomFile(t, other, 200_000, 9)
	code, results, stderr = inject(t, apiURL, "--secret", "not the branch secret", other)
	if code != 1 || len(results) != 1 || results[0].Complete || !strings.Contains(stderr, "not made with this appliance's content server secret") {
		t.Fatalf("wrong secret: exit %d, %+v: %s", code, results, stderr)
	}
	if ids := eventIDs(t, apiURL); ids[events.InjectRefused] != 1 {
		t.Errorf("inject-refused events: %v", ids)
	}
}

// Without a content server secret on the appliance, inject is refused
// with the reason and the fix.
func TestInjectNeedsContentSecret(t *testing.T) {
	apiURL, _ := startOutpost(t, nil)
	f := filepath.Join(t.TempDir(), "f")
	randomFile(t, f, 1000, 4)
	code, _, stderr := inject(t, apiURL, "--secret", contentSecret, f)
	if code != 1 || !strings.Contains(stderr, "content_secret") {
		t.Fatalf("exit %d: %s", code, stderr)
	}
}

// fetchCI asks an origin for content information as a Windows client of
// that version does.
func fetchCI(t *testing.T, url string, v pccrc.Version) *pccrc.Info {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	cr := pccrtp.ClientRequest{Version: pccrtp.Version{Major: 1, Minor: 0}}
	if v == pccrc.V2 {
		cr = pccrtp.ClientRequest{Version: pccrtp.Version{Major: 1, Minor: 1}, MinContentInformation: pccrtp.Version{Major: 1}, MaxContentInformation: pccrtp.Version{Major: 2}}
	}
	cr.SetHeaders(req.Header)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.Header.Get("Content-Encoding") != "peerdist" {
		t.Fatalf("%s: no content information (%s, %d bytes)", url, resp.Status, len(raw))
	}
	ci, err := pccrc.Parse(raw)
	if err != nil || ci.Version != v {
		t.Fatalf("%s: %v (version %d, want %d)", url, err, ci.Version, v)
	}
	return ci
}

// The whole path of issue 9: `outpost origin` serves files; the appliance
// pre-stages them (a [[preload]] entry and `outpost preload URL`); a
// client then gets the content information from the origin and every
// block from the hosted cache, byte-identical, V1 and V2.
func TestPreloadFromOriginEndToEnd(t *testing.T) {
	served := t.TempDir()
	big := randomFile(t, filepath.Join(served, "os/install.wim"), 32<<20+200_000, 5) // two V1 segments
	msu := randomFile(t, filepath.Join(served, "updates/kb5034441.msu"), 900_000, 6)
	srv, err := origin.New(origin.Options{Dir: served, Secret: pccrc.PassphraseSecret(contentSecret), CacheDir: t.TempDir(),
		Logger: slog.New(slog.DiscardHandler), InlineHashLimit: 1 << 40, MinFileAge: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	web := httptest.NewServer(srv)
	defer web.Close()

	apiURL, hostedHTTP := startOutpost(t, func(c *config.Config) {
		c.Preloading.Versions = []int{1, 2}
		c.Preload = []config.Preload{{URL: web.URL + "/os/install.wim"}}
	})
	client := &api.Client{BaseURL: apiURL, Token: testToken}

	// outpost preload URL, as an admin types it: it waits until done.
	var out, errOut bytes.Buffer
	code := preloadcmd.Run(context.Background(), []string{web.URL + "/updates/kb5034441.msu", "--api", apiURL, "--token", testToken,
		"--version", "1,2", "--limit", "1Gbit/s", "--interval", "20ms"}, &out, &errOut)
	if code != 0 || !strings.Contains(out.String(), "completed:") || !strings.Contains(out.String(), "100.0%") {
		t.Fatalf("outpost preload: exit %d\n%s%s", code, out.String(), errOut.String())
	}
	// The configured entry completes by itself.
	deadline := time.Now().Add(60 * time.Second)
	for {
		list, _, err := client.PreloadJobs(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		var cfgJob *preload.Job
		for i := range list.Jobs {
			if list.Jobs[i].Source == preload.SourceConfig {
				cfgJob = &list.Jobs[i]
			}
		}
		if cfgJob != nil && cfgJob.State == preload.Completed {
			if cfgJob.FetchedBytes < uint64(len(big)) || cfgJob.Progress != 1 || !cfgJob.Next.After(time.Now()) {
				t.Errorf("configured job: %+v", cfgJob)
			}
			break
		}
		if cfgJob != nil && cfgJob.State == preload.Failed || time.Now().After(deadline) {
			t.Fatalf("configured job: %+v", cfgJob)
		}
		time.Sleep(50 * time.Millisecond)
	}

	for path, data := range map[string][]byte{"/os/install.wim": big, "/updates/kb5034441.msu": msu} {
		for _, v := range []pccrc.Version{pccrc.V1, pccrc.V2} {
			ci := fetchCI(t, web.URL+path, v)
			if got := getFromCache(t, hostedHTTP, ci); !bytes.Equal(got, data) {
				t.Errorf("%s V%d: the cache served %d bytes that differ from the origin's %d", path, v, len(got), len(data))
			}
		}
	}
	if ids := eventIDs(t, apiURL); ids[events.PreloadStarted] != 2 || ids[events.PreloadCompleted] != 2 {
		t.Errorf("preload events: %v", ids)
	}

	// --json prints the finished job; a failure exits 1.
	out.Reset()
	code = preloadcmd.Run(context.Background(), []string{web.URL + "/no/such/file", "--api", apiURL, "--token", testToken, "--json", "--interval", "20ms"}, &out, &errOut)
	var j preload.Job
	if code != 1 || json.Unmarshal(out.Bytes(), &j) != nil || j.State != preload.Failed || !strings.Contains(j.Error, "404") {
		t.Errorf("a missing file: exit %d, %s", code, out.String())
	}
}

// The status page's preload section in a real headless Chromium: every
// job with its state and progress as the API says, and a screenshot.
func TestStatusPageShowsPreload(t *testing.T) {
	browser := &chromium.Browser{Path: chromium.Find(t), Dir: t.TempDir()}
	served := t.TempDir()
	randomFile(t, filepath.Join(served, "app.msi"), 2_000_000, 8)
	srv, err := origin.New(origin.Options{Dir: served, Secret: pccrc.PassphraseSecret(contentSecret), CacheDir: t.TempDir(),
		Logger: slog.New(slog.DiscardHandler), InlineHashLimit: 1 << 40, MinFileAge: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	web := httptest.NewServer(srv)
	defer web.Close()
	h := time.Now().Hour()
	closed, err := window.Parse(fmt.Sprintf("%02d:00-%02d:00", (h+2)%24, (h+3)%24))
	if err != nil {
		t.Fatal(err)
	}
	apiURL, _ := startOutpost(t, func(c *config.Config) {
		c.Preload = []config.Preload{{URL: web.URL + "/nightly/app.msi", Window: closed, Limit: 20_000_000}}
	})
	ctx := context.Background()
	client := &api.Client{BaseURL: apiURL, Token: testToken}
	done, _, err := client.AddPreload(ctx, preload.Spec{URL: web.URL + "/app.msi", Versions: []int{1, 2}})
	if err != nil {
		t.Fatal(err)
	}
	missing, _, err := client.AddPreload(ctx, preload.Spec{URL: web.URL + "/gone.msi"})
	if err != nil {
		t.Fatal(err)
	}
	var list *api.PreloadList
	for deadline := time.Now().Add(30 * time.Second); ; {
		if list, _, err = client.PreloadJobs(ctx); err != nil {
			t.Fatal(err)
		}
		states := map[preload.State]int{}
		for _, j := range list.Jobs {
			states[j.State]++
		}
		if states[preload.Completed] == 1 && states[preload.Failed] == 1 && states[preload.Paused] == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("jobs: %+v", list.Jobs)
		}
		time.Sleep(20 * time.Millisecond)
	}

	dom, err := browser.DumpDOM(ctx, apiURL+"/", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(dom, `data-state="ready"`) {
		t.Fatalf("the page did not render its data:\n%s", dom)
	}
	if _, text := element(t, dom, "preload-state"); !strings.HasPrefix(text, "3 jobs · no total limit") {
		t.Errorf("#preload-state: %q", text)
	}
	for _, j := range list.Jobs {
		row := regexp.MustCompile(`<tr data-job="` + j.ID + `">.*?class="state">([^<]*)<.*?class="small muted progress" data-value="([^"]*)">([^<]*)<`).FindStringSubmatch(dom)
		if row == nil {
			t.Errorf("job %s (%s) is not on the page", j.ID, j.URL)
			continue
		}
		if row[1] != string(j.State) || row[2] != strconv.FormatFloat(j.Progress, 'f', -1, 64) || !strings.HasPrefix(row[3], api.FormatPercent(j.Progress)) {
			t.Errorf("job %s: the page shows %q, %s, %q; the API %s, %v", j.ID, row[1], row[2], row[3], j.State, j.Progress)
		}
	}
	for _, want := range []string{"V1+V2", "window " + closed.String(), "404", "20Mbit/s"} {
		if !strings.Contains(dom, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	if done.ID == missing.ID {
		t.Error("two URLs, one job")
	}
	file := filepath.Join(artifactDir(t), "statuspage-preload.png")
	if err := browser.Screenshot(ctx, apiURL+"/", file, 1280, 1900, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", file)
}
