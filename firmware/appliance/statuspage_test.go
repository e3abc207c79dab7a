package appliance

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"html"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/outpost-appliance/outpost/firmware/api"
	"github.com/outpost-appliance/outpost/firmware/config"
	"github.com/outpost-appliance/outpost/firmware/events"
	"github.com/outpost-appliance/outpost/firmware/getcmd"
	"github.com/outpost-appliance/outpost/firmware/internal/chromium"
	"github.com/outpost-appliance/outpost/firmware/offercmd"
	"github.com/outpost-appliance/outpost/firmware/report"
	"github.com/outpost-appliance/outpost/peerdist/pccrc"
)

const testToken = "0123456789abcdef-page-token"

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// runningOutpost starts the appliance's services as `outpost run` does,
// on loopback ports, with the traffic history sampled every 200 ms.
func runningOutpost(t *testing.T) (apiURL, hostedHTTP string) {
	t.Helper()
	cfg := config.Default()
	cfg.Hostname = "branch-berlin-07"
	cfg.API.Listen = config.ListenAddr(freeAddr(t))
	cfg.API.Token = config.NewSecret(testToken)
	cfg.HostedCache.HTTPListen = config.ListenAddr(freeAddr(t))
	cfg.HostedCache.HTTPSListen = config.ListenAddr(freeAddr(t))
	cfg.HostedCache.Hostname = "localhost"
	cfg.Peer.Listen = config.ListenAddr(freeAddr(t))
	cfg.Leader.RelayListen = config.ListenAddr(freeAddr(t))
	app, err := New(Options{
		Version: "v0.9.0-test", Mode: api.ModeDaemon, Config: cfg, ConfigSource: "/boot/outpost.toml",
		DataDir: t.TempDir(), Logger: slog.New(slog.DiscardHandler), HistoryInterval: 200 * time.Millisecond,
	})
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
	deadline := time.Now().Add(15 * time.Second)
	for {
		if c, _, err := (&api.Client{BaseURL: apiURL}).Cache(ctx); err == nil && c.Running {
			return apiURL, string(cfg.HostedCache.HTTPListen)
		}
		if time.Now().After(deadline) {
			t.Fatal("the hosted cache never came up")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// offerAndFetch offers content as a Windows client does and fetches it
// back from the cache `gets` times, pausing between fetches so the
// history chart has a shape.
func offerAndFetch(t *testing.T, hostedHTTP, tag string, size, gets int) []string {
	t.Helper()
	dir := t.TempDir()
	data := make([]byte, size)
	rand.NewChaCha8([32]byte{byte(size), byte(len(tag))}).Read(data)
	ci, err := pccrc.GenerateV1(context.Background(), bytes.NewReader(data), pccrc.SHA256, []byte("branch"))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := ci.MarshalBinary()
	dataPath, ciPath := filepath.Join(dir, "data"), filepath.Join(dir, "data.ci")
	os.WriteFile(dataPath, data, 0o644)
	os.WriteFile(ciPath, raw, 0o644)
	var out bytes.Buffer
	if code := offercmd.Run(context.Background(), []string{"--to", hostedHTTP, "--version", "2", "--ci", ciPath, "--data", dataPath,
		"--listen", "127.0.0.1:0", "--tag", tag, "--timeout", "30s"}, &out, &out); code != 0 {
		t.Fatalf("offer: %d: %s", code, out.String())
	}
	for range gets {
		if code := getcmd.Run(context.Background(), []string{"--from", hostedHTTP, "--ci", ciPath, "-o", filepath.Join(dir, "out")}, &out, &out); code != 0 {
			t.Fatalf("get: %d: %s", code, out.String())
		}
		time.Sleep(250 * time.Millisecond)
	}
	var ids []string
	for i := range ci.Segments {
		ids = append(ids, hex.EncodeToString(ci.ID(i)))
	}
	return ids
}

// element finds the element with id in a DOM dump and returns its
// data-value attribute and its text (up to its first child element).
func element(t *testing.T, dom, id string) (value, text string) {
	t.Helper()
	m := regexp.MustCompile(`<[a-z0-9]+ [^>]*\bid="` + regexp.QuoteMeta(id) + `"[^>]*>([^<]*)`).FindStringSubmatch(dom)
	if m == nil {
		t.Fatalf("the page has no element #%s", id)
	}
	if v := regexp.MustCompile(`data-value="([^"]*)"`).FindStringSubmatch(m[0]); v != nil {
		value = v[1]
	}
	return value, html.UnescapeString(strings.TrimSpace(m[1]))
}

// The status page in a real headless Chromium, loaded from a running
// outpost with traffic: once its scripts have rendered the data, its key
// figures are the API's, and a screenshot (desktop and phone) is kept.
func TestStatusPageInChromium(t *testing.T) {
	browser := &chromium.Browser{Path: chromium.Find(t), Dir: t.TempDir()}
	apiURL, hostedHTTP := runningOutpost(t)
	ctx := context.Background()

	offerAndFetch(t, hostedHTTP, "BITS-4.0", 700_000, 3)
	ids := offerAndFetch(t, hostedHTTP, "WinINet", 200_000, 1)
	client := &api.Client{BaseURL: apiURL, Token: testToken}
	if err := client.DeleteSegment(ctx, ids[0]); err != nil {
		t.Fatal(err)
	}
	(&api.Client{BaseURL: apiURL, Token: "not-the-token-at-all"}).DeleteSegment(ctx, ids[0])
	time.Sleep(500 * time.Millisecond) // a few more history samples

	// What the API says; nothing changes while the page loads.
	st, _, err := client.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cache, _, err := client.Cache(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var top report.TopSegments
	getJSON(t, apiURL+"/api/v1/segments/top?limit=10", &top)
	var leaders report.Leaders
	getJSON(t, apiURL+"/api/v1/leaders", &leaders)
	evs, _, err := client.Events(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cache.Hits == 0 || len(top.Segments) == 0 || len(evs.Events) < 3 {
		t.Fatalf("no traffic to show: cache %+v, top %d, events %d", cache, len(top.Segments), len(evs.Events))
	}

	dom, err := browser.DumpDOM(ctx, apiURL+"/", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(dom, `data-state="ready"`) {
		t.Fatalf("the page did not render its data:\n%s", dom)
	}
	checks := []struct {
		id, value, text string
	}{
		{"hostname", "", st.Hostname},
		{"hit-ratio", strconv.FormatFloat(cache.HitRatio, 'f', -1, 64), api.FormatPercent(cache.HitRatio)},
		{"wan-saved", strconv.FormatUint(cache.WANBytesSaved, 10), api.FormatBytes(cache.WANBytesSaved)},
		{"bytes-served", strconv.FormatUint(cache.BytesServed, 10), api.FormatBytes(cache.BytesServed)},
		{"cache-fill", strconv.FormatFloat(cache.Fill, 'f', -1, 64), api.FormatPercent(cache.Fill)},
	}
	for _, c := range checks {
		value, text := element(t, dom, c.id)
		if text != c.text || (c.value != "" && value != c.value) {
			t.Errorf("#%s: %q (data-value %q), the API says %q (%s)", c.id, text, value, c.text, c.value)
		}
	}
	if _, text := element(t, dom, "version"); !strings.Contains(text, "outpost v0.9.0-test") {
		t.Errorf("#version: %q", text)
	}
	for _, s := range st.Services {
		row := regexp.MustCompile(`<tr data-service="` + regexp.QuoteMeta(s.Name) + `">.*?class="state">([^<]*)<`).FindStringSubmatch(dom)
		if row == nil || !strings.HasPrefix(row[1], string(s.State)) {
			t.Errorf("service %s: the page shows %q, the API %q", s.Name, row, s.State)
		}
	}
	rows := regexp.MustCompile(`<tr data-segment="([0-9a-f]+)">`).FindAllStringSubmatch(dom, -1)
	if len(rows) != len(top.Segments) || rows[0][1] != top.Segments[0].ID {
		t.Errorf("top segments: the page shows %d (first %v), the API %d (first %s)", len(rows), rows, len(top.Segments), top.Segments[0].ID)
	}
	seqs := regexp.MustCompile(`<tr data-seq="(\d+)">`).FindAllStringSubmatch(dom, -1)
	if len(seqs) == 0 || seqs[0][1] != strconv.FormatUint(evs.Events[0].Seq, 10) || !strings.Contains(dom, textEscaper.Replace(evs.Events[0].Message)) {
		t.Errorf("events: the page shows %v, the API's latest is %+v", seqs, evs.Events[0])
	}
	if !strings.Contains(dom, strconv.Itoa(int(events.SegmentPurged))) || !strings.Contains(dom, `id="served-line"`) {
		t.Error("the page lacks the purge event or the chart")
	}
	leaderText := "leader service not running"
	if leaders.Running {
		leaderText = strconv.Itoa(len(leaders.Peers)) + " peer leader"
	}
	if _, text := element(t, dom, "leaders-state"); !strings.HasPrefix(text, leaderText) {
		t.Errorf("leaders: the page shows %q, the API says running=%v", text, leaders.Running)
	}

	dir := artifactDir(t)
	for _, shot := range []struct {
		name          string
		width, height int
	}{{"statuspage-desktop.png", 1280, 1500}, {"statuspage-phone.png", 390, 1900}} {
		file := filepath.Join(dir, shot.name)
		if err := browser.Screenshot(ctx, apiURL+"/", file, shot.width, shot.height, 5*time.Second); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s", file)
	}
}

// textEscaper escapes text as a DOM dump does (quotes are left alone).
var textEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("%s: %v: %s", url, err, body)
	}
}

// artifactDir is where test artefacts are kept: bin/test-artifacts/ at
// the top of the checkout (OUTPOST_ARTIFACTS overrides it).
func artifactDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("OUTPOST_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join("..", "..", "bin", "test-artifacts")
	}
	dir, _ = filepath.Abs(dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}
