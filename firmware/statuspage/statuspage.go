// Package statuspage is the appliance's status page (GET /): one
// self-contained HTML page embedded in the binary — no external scripts,
// styles, fonts or images — that reads the management API every few
// seconds and shows the health of each service, the cache's fill and hit
// ratio, bytes served against WAN bytes saved over time, the top
// segments, the peer leaders and the recent events. It fits a phone.
package statuspage

import (
	_ "embed"
	"net/http"
)

//go:embed page.html
var page []byte

// contentSecurityPolicy lets the page load nothing from anywhere but
// itself: an appliance in a branch may have no Internet, and an admin's
// browser must not be sent elsewhere.
const contentSecurityPolicy = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// Handler serves the page.
func Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Cache-Control", "no-cache")
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		w.Write(page)
	})
}
