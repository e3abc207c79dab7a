package forward

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/outpost-appliance/outpost/leader/internal/ratelimit"
)

// Default ports (the StifleR port map the issue fixes).
const (
	DefaultRequestPort = 3704
	DefaultReplyPort   = 3705
)

// PeerConfig is one configured peer leader.
type PeerConfig struct {
	// Address is a host name or IP address, optionally ":port" naming
	// its request port (default 3704); its reply port is the next one.
	Address string
	Name    string
}

// LeaderStats are the counters of one peer leader.
type LeaderStats struct {
	Name    string `json:"name"`
	Address string `json:"address"`
	// Resolved is what Address resolved to (empty while unresolvable).
	Resolved []string `json:"resolved,omitempty"`
	// LastContact is when an authenticated message last came from it.
	LastContact time.Time `json:"last_contact,omitzero"`
	// ForwardsSent counts our requests to it, ForwardsReceived its
	// requests to us.
	ForwardsSent     uint64 `json:"forwards_sent"`
	ForwardsReceived uint64 `json:"forwards_received"`
	// MatchesReceived counts segment entries it reported to us,
	// MatchesSent those we reported to it.
	MatchesReceived uint64 `json:"matches_received"`
	MatchesSent     uint64 `json:"matches_sent"`
	// RelayBytes counts block bytes the relay fetched from holders it
	// reported.
	RelayBytes uint64 `json:"relay_bytes"`
	// AuthFailures counts messages from its address that failed the MAC;
	// Rejected those authenticated but stale or replayed.
	AuthFailures uint64 `json:"auth_failures"`
	Rejected     uint64 `json:"rejected"`
	// RateLimited counts its requests and keepalives dropped over their
	// per-peer rates.
	RateLimited uint64 `json:"rate_limited"`

	// State is what the keepalives say: "unknown" until it answers or
	// misses KeepaliveMisses of them, then "reachable" or "unreachable",
	// since StateSince. Reason says why it is unreachable.
	State      PeerState `json:"state"`
	StateSince time.Time `json:"state_since,omitzero"`
	Reason     string    `json:"reason,omitempty"`
	// KeepalivesSent counts our keepalives to it, KeepalivesReceived its
	// keepalives to us (answered unless over the rate), AcksReceived its
	// acks of ours; UnmatchedAcks counts authenticated acks of no
	// keepalive outstanding (ignored).
	KeepalivesSent     uint64 `json:"keepalives_sent"`
	KeepalivesReceived uint64 `json:"keepalives_received"`
	AcksReceived       uint64 `json:"acks_received"`
	UnmatchedAcks      uint64 `json:"unmatched_acks"`
}

// PeerState is a peer leader's reachability.
type PeerState string

// Peer states.
const (
	PeerUnknown     PeerState = "unknown"
	PeerReachable   PeerState = "reachable"
	PeerUnreachable PeerState = "unreachable"
)

// PeerChange is a peer leader changing state.
type PeerChange struct {
	// Name is the configured name, or the address when unnamed.
	Name, Address string
	State, From   PeerState
	At            time.Time
	// Reason says why it is unreachable ("no answer to 3 keepalives in
	// 1m30s", or the error sending them).
	Reason string
	// DownSince (unreachable) is when the outage began: its last
	// authenticated message, or our first unanswered keepalive when it
	// never sent one.
	DownSince time.Time
	// DownFor (reachable after unreachable) is how long it was down,
	// from DownSince.
	DownFor time.Duration
	// LastContact is its last authenticated message before this change.
	LastContact time.Time
}

// maxOutstanding bounds the keepalive nonces remembered per peer: acks of
// older keepalives are unmatched (it was reachable since, or is late).
const maxOutstanding = 8

// reach is a peer's reachability, driven by keepalives.
type reach struct {
	mu    sync.Mutex
	state PeerState
	since time.Time
	// reason is why it is unreachable; downSince when that began.
	reason    string
	downSince time.Time
	// missed counts keepalives sent (or tried) since it was last heard
	// from, the first of them at firstMissed; sendErr is the last try's
	// error.
	missed      int
	firstMissed time.Time
	sendErr     error
	outstanding [][16]byte
}

type peer struct {
	cfg  PeerConfig
	name string
	host string
	port int // request port; replies go to port+1

	mu    sync.Mutex
	addrs []netip.Addr

	limiter, keepaliveLimiter *ratelimit.Limiter
	lastContact               atomic.Int64
	forwardsSent, forwardsReceived, matchesReceived, matchesSent,
	relayBytes, authFailures, rejected, rateLimited,
	keepalivesSent, keepalivesReceived, acksReceived, unmatchedAcks atomic.Uint64

	reach reach
}

// keepaliveRate bounds the keepalives answered per second per peer: one
// every KeepaliveInterval is normal, so this only stops a flood (by a
// holder of the secret) turning into one of acks.
const keepaliveRate = 20

func newPeer(cfg PeerConfig, rate float64, start time.Time) *peer {
	p := &peer{cfg: cfg, name: cfg.Name, host: cfg.Address, port: DefaultRequestPort,
		limiter:          ratelimit.NewLimiter(rate, 2*rate),
		keepaliveLimiter: ratelimit.NewLimiter(keepaliveRate, 2*keepaliveRate),
		reach:            reach{state: PeerUnknown, since: start}}
	if h, port, err := net.SplitHostPort(cfg.Address); err == nil {
		if n, err := strconv.Atoi(port); err == nil && n > 0 && n < 65535 {
			p.host, p.port = h, n
		}
	}
	if p.name == "" {
		p.name = cfg.Address
	}
	return p
}

// resolve looks the peer's host up (an IP literal resolves to itself).
func (p *peer) resolve(ctx context.Context) error {
	var addrs []netip.Addr
	if a, err := netip.ParseAddr(p.host); err == nil {
		addrs = []netip.Addr{a.Unmap()}
	} else {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		found, err := net.DefaultResolver.LookupNetIP(ctx, "ip", p.host)
		if err != nil {
			return err
		}
		for _, a := range found {
			addrs = append(addrs, a.Unmap())
		}
	}
	p.mu.Lock()
	p.addrs = addrs
	p.mu.Unlock()
	return nil
}

// requestAddr is where requests to the peer go (its first address).
func (p *peer) requestAddr() (netip.AddrPort, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.addrs) == 0 {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(p.addrs[0], uint16(p.port)), true
}

func (p *peer) snapshot() LeaderStats {
	s := LeaderStats{
		Name: p.name, Address: p.cfg.Address,
		ForwardsSent: p.forwardsSent.Load(), ForwardsReceived: p.forwardsReceived.Load(),
		MatchesReceived: p.matchesReceived.Load(), MatchesSent: p.matchesSent.Load(),
		RelayBytes: p.relayBytes.Load(), AuthFailures: p.authFailures.Load(),
		Rejected: p.rejected.Load(), RateLimited: p.rateLimited.Load(),
	}
	if t := p.lastContact.Load(); t != 0 {
		s.LastContact = time.Unix(0, t)
	}
	s.KeepalivesSent, s.KeepalivesReceived = p.keepalivesSent.Load(), p.keepalivesReceived.Load()
	s.AcksReceived, s.UnmatchedAcks = p.acksReceived.Load(), p.unmatchedAcks.Load()
	p.reach.mu.Lock()
	s.State, s.StateSince, s.Reason = p.reach.state, p.reach.since, p.reach.reason
	p.reach.mu.Unlock()
	p.mu.Lock()
	for _, a := range p.addrs {
		s.Resolved = append(s.Resolved, a.String())
	}
	p.mu.Unlock()
	return s
}

// peerSet finds peers by source address.
type peerSet struct {
	list []*peer
	mu   sync.RWMutex
	byIP map[netip.Addr]*peer
}

func (s *peerSet) resolveAll(ctx context.Context) []error {
	var errs []error
	byIP := map[netip.Addr]*peer{}
	for _, p := range s.list {
		if err := p.resolve(ctx); err != nil {
			errs = append(errs, err)
		}
		p.mu.Lock()
		for _, a := range p.addrs {
			byIP[a] = p
		}
		p.mu.Unlock()
	}
	s.mu.Lock()
	s.byIP = byIP
	s.mu.Unlock()
	return errs
}

func (s *peerSet) byAddr(a netip.Addr) *peer {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.byIP[a.Unmap()]
}

func (s *peerSet) byName(name string) *peer {
	for _, p := range s.list {
		if p.name == name {
			return p
		}
	}
	return nil
}

// heard records an authenticated message from the peer at now: it is
// reachable. notify is told of a change, under the peer's reach lock so
// that one peer's changes arrive in order.
func (p *peer) heard(now time.Time, notify func(PeerChange)) {
	last := p.lastContact.Swap(now.UnixNano())
	r := &p.reach
	r.mu.Lock()
	defer r.mu.Unlock()
	r.missed, r.firstMissed, r.sendErr = 0, time.Time{}, nil
	if r.state == PeerReachable {
		return
	}
	c := PeerChange{Name: p.name, Address: p.cfg.Address, State: PeerReachable, From: r.state, At: now}
	if last != 0 {
		c.LastContact = time.Unix(0, last)
	}
	if r.state == PeerUnreachable {
		c.DownSince, c.DownFor = r.downSince, now.Sub(r.downSince)
	}
	r.state, r.since, r.reason, r.downSince = PeerReachable, now, "", time.Time{}
	notify(c)
}

// sentKeepalive records a keepalive sent (err nil, nonce remembered for
// its ack) or not sent (err) at now.
func (p *peer) sentKeepalive(nonce [16]byte, now time.Time, err error) {
	r := &p.reach
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.missed == 0 {
		r.firstMissed = now
	}
	r.missed++
	r.sendErr = err
	if err == nil {
		p.keepalivesSent.Add(1)
		if len(r.outstanding) == maxOutstanding {
			r.outstanding = r.outstanding[1:]
		}
		r.outstanding = append(r.outstanding, nonce)
	}
}

// acked reports whether nonce is a keepalive of ours still outstanding,
// which it then no longer is.
func (p *peer) acked(nonce [16]byte) bool {
	r := &p.reach
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, n := range r.outstanding {
		if n == nonce {
			r.outstanding = append(r.outstanding[:i], r.outstanding[i+1:]...)
			return true
		}
	}
	return false
}

// checkMissed makes the peer unreachable, once per outage, when misses
// keepalives in a row went unanswered.
func (p *peer) checkMissed(now time.Time, misses int, notify func(PeerChange)) {
	r := &p.reach
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.missed < misses || r.state == PeerUnreachable {
		return
	}
	reason := fmt.Sprintf("no answer to %d keepalives in %s", r.missed, roundDuration(now.Sub(r.firstMissed)))
	if r.sendErr != nil {
		reason = fmt.Sprintf("keepalive not sent: %v", r.sendErr)
	}
	c := PeerChange{Name: p.name, Address: p.cfg.Address, State: PeerUnreachable, From: r.state, At: now,
		Reason: reason, DownSince: r.firstMissed}
	if t := p.lastContact.Load(); t != 0 {
		c.LastContact = time.Unix(0, t)
		c.DownSince = c.LastContact
	}
	r.state, r.since, r.reason, r.downSince = PeerUnreachable, now, reason, c.DownSince
	notify(c)
}

// roundDuration rounds to seconds, or milliseconds under a second (tests'
// short intervals).
func roundDuration(d time.Duration) time.Duration {
	if d < time.Second {
		return d.Round(time.Millisecond)
	}
	return d.Round(time.Second)
}
