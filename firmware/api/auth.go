package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/outpost-appliance/outpost/firmware/events"
)

// Failed-login limits: after maxFailures bad tokens from one source within
// failureWindow, that source is refused without a look at its token for
// blockFor. Guessing a 16-character token at 5 tries a minute is hopeless,
// and a script with a stale token does not flood the event log.
const (
	maxFailures   = 5
	failureWindow = time.Minute
	blockFor      = time.Minute
	// maxSources bounds the limiter's memory under a spray of sources.
	maxSources = 10_000
)

// RequireToken lets a request through only with "Authorization: Bearer
// <token>" matching the configured token. It guards every call that
// changes something.
func (s *Server) RequireToken(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.opts.Token.Reveal() == "" {
			writeError(w, http.StatusForbidden, "no API token is configured ([api] token or token_file), so changes over the API are refused")
			return
		}
		if s.checkToken(w, r) {
			next.ServeHTTP(w, r)
		}
	})
}

// RequireRead lets reads through anonymously when [api]
// read_only_anonymous is on, and otherwise only with the token.
func (s *Server) RequireRead(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.opts.ReadOnlyAnonymous {
			next.ServeHTTP(w, r)
			return
		}
		if s.opts.Token.Reveal() == "" {
			writeError(w, http.StatusForbidden, "reads need the token ([api] read_only_anonymous = false) but no token is configured")
			return
		}
		if s.checkToken(w, r) {
			next.ServeHTTP(w, r)
		}
	})
}

// checkToken answers the request itself (429 or 401) unless it carries
// the token.
func (s *Server) checkToken(w http.ResponseWriter, r *http.Request) bool {
	source := sourceOf(r.RemoteAddr)
	if wait := s.logins.blocked(source); wait > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(wait.Round(time.Second)/time.Second)))
		writeError(w, http.StatusTooManyRequests, "too many failed attempts from this address; try again later")
		return false
	}
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if ok && tokensEqual(got, s.opts.Token.Reveal()) {
		s.logins.succeeded(source)
		return true
	}
	blocked := s.logins.failed(source)
	s.log.Warn("API call refused: bad or missing token", "path", r.URL.Path, "remote", r.RemoteAddr, "blocked", blocked)
	s.opts.Events.Log(events.AuthFailed, events.Fields{"remote": r.RemoteAddr, "path": r.Method + " " + r.URL.Path, "blocked": blocked})
	w.Header().Set("WWW-Authenticate", `Bearer realm="outpost"`)
	writeError(w, http.StatusUnauthorized, "a valid bearer token is required (Authorization: Bearer <[api] token>)")
	return false
}

// tokensEqual compares in constant time, lengths included: hashing first
// gives equal-length inputs whatever was sent.
func tokensEqual(got, want string) bool {
	g, w := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(g[:], w[:]) == 1
}

// sourceOf is the address failures are counted against: the client's IP,
// an IPv6 client's /64 (one host can pick any address in its prefix).
func sourceOf(remoteAddr string) netip.Prefix {
	ap, err := netip.ParseAddrPort(remoteAddr)
	if err != nil {
		return netip.Prefix{}
	}
	addr := ap.Addr().Unmap()
	bits := 32
	if addr.Is6() {
		bits = 64
	}
	p, _ := addr.Prefix(bits)
	return p
}

// loginLimiter counts failed token checks per source.
type loginLimiter struct {
	now     func() time.Time
	mu      sync.Mutex
	sources map[netip.Prefix]*failures
}

type failures struct {
	count        int
	windowStart  time.Time
	blockedUntil time.Time
}

func newLoginLimiter(now func() time.Time) *loginLimiter {
	return &loginLimiter{now: now, sources: map[netip.Prefix]*failures{}}
}

// blocked returns how long source is still refused (0: not).
func (l *loginLimiter) blocked(source netip.Prefix) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	f := l.sources[source]
	if f == nil {
		return 0
	}
	return max(f.blockedUntil.Sub(l.now()), 0)
}

// failed counts a failure and reports whether source is now blocked.
func (l *loginLimiter) failed(source netip.Prefix) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	f := l.sources[source]
	if f == nil {
		if len(l.sources) >= maxSources {
			l.prune(now)
		}
		f = &failures{windowStart: now}
		l.sources[source] = f
	}
	if now.Sub(f.windowStart) > failureWindow {
		f.count, f.windowStart = 0, now
	}
	f.count++
	if f.count >= maxFailures {
		f.blockedUntil = now.Add(blockFor)
		f.count, f.windowStart = 0, now
		return true
	}
	return false
}

func (l *loginLimiter) succeeded(source netip.Prefix) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.sources, source)
}

// prune drops sources whose window and block are over; if that is not
// enough, it starts afresh (forgetting failures is the safe side for a
// limiter that only slows guessing down).
func (l *loginLimiter) prune(now time.Time) {
	for src, f := range l.sources {
		if now.Sub(f.windowStart) > failureWindow && now.After(f.blockedUntil) {
			delete(l.sources, src)
		}
	}
	if len(l.sources) >= maxSources {
		clear(l.sources)
	}
}
