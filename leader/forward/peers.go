package forward

import (
	"context"
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
	// RateLimited counts its requests dropped over the per-peer rate.
	RateLimited uint64 `json:"rate_limited"`
}

type peer struct {
	cfg  PeerConfig
	name string
	host string
	port int // request port; replies go to port+1

	mu    sync.Mutex
	addrs []netip.Addr

	limiter     *ratelimit.Limiter
	lastContact atomic.Int64
	forwardsSent, forwardsReceived, matchesReceived, matchesSent,
	relayBytes, authFailures, rejected, rateLimited atomic.Uint64
}

func newPeer(cfg PeerConfig, rate float64) *peer {
	p := &peer{cfg: cfg, name: cfg.Name, host: cfg.Address, port: DefaultRequestPort,
		limiter: ratelimit.NewLimiter(rate, 2*rate)}
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
