package statuspage

import (
	"io"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

// The page is self-contained: nothing in it loads from elsewhere, and the
// policy it is served with forbids it anyway.
func TestSelfContained(t *testing.T) {
	rec := httptest.NewRecorder()
	Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	body, _ := io.ReadAll(rec.Body)
	if rec.Code != 200 || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/html") {
		t.Fatalf("%d %s", rec.Code, rec.Header().Get("Content-Type"))
	}
	if csp := rec.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "connect-src 'self'") {
		t.Errorf("policy %q", csp)
	}
	for _, external := range []*regexp.Regexp{
		regexp.MustCompile(`(?i)<(script|link|img|iframe)[^>]+(src|href)=`),
		regexp.MustCompile(`(?i)url\(`),
		regexp.MustCompile(`(?i)@import`),
		regexp.MustCompile(`(?i)fetch\(["']https?:`),
	} {
		if m := external.Find(body); m != nil {
			t.Errorf("the page loads something from elsewhere: %s", m)
		}
	}
	for _, id := range []string{"services", "cache-fill", "hit-ratio", "wan-saved", "bytes-served", "chart", "top-segments", "leaders", "events", "preload", `name="viewport"`} {
		if !strings.Contains(string(body), id) {
			t.Errorf("the page lacks %s", id)
		}
	}
}
