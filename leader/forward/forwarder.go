package forward

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/outpost-appliance/outpost/leader/holders"
	"github.com/outpost-appliance/outpost/leader/internal/ratelimit"
	"github.com/outpost-appliance/outpost/leader/internal/seen"
	"github.com/outpost-appliance/outpost/leader/prober"
	"github.com/outpost-appliance/outpost/peerdist/pccrc"
	"github.com/outpost-appliance/outpost/peerdist/pccrd"
)

// Defaults of a Forwarder.
const (
	// DefaultCollectWindow is how long a re-multicast probe's matches are
	// collected: well past APP_MAX_DELAY (65 ms) and a Windows prober's
	// own 300 ms wait.
	DefaultCollectWindow = 500 * time.Millisecond
	// DefaultPendingTTL is how long the origin waits for replies: iPXE
	// waits 2 s for a ProbeMatch and repeats its probe after 1 s.
	DefaultPendingTTL = 3 * time.Second
	// DefaultForwardRate bounds the probes forwarded per second.
	DefaultForwardRate = 50
	// DefaultPeerRate bounds the requests accepted per second per peer.
	DefaultPeerRate = 200
	// DefaultKeepaliveInterval is how often each peer gets a keepalive.
	DefaultKeepaliveInterval = 30 * time.Second
	// DefaultKeepaliveMisses is how many keepalives in a row a peer
	// leaves unanswered (no authenticated message at all) before it is
	// unreachable.
	DefaultKeepaliveMisses = 3
	// MaxCollecting bounds re-multicast probes collecting at once.
	MaxCollecting = 256
	// maxRepliesPerRequest bounds the reply datagrams one request causes.
	maxRepliesPerRequest = 16
	entriesPerReply      = 16
	resolveEvery         = time.Minute
	ipv6Delay            = 150 * time.Millisecond
)

// LocalSegment is what this leader's own store holds of a segment.
type LocalSegment struct {
	Version  pccrc.Version
	Size     uint32
	Blocks   int
	Complete bool
}

// Config configures a Forwarder.
type Config struct {
	Secret []byte
	Peers  []PeerConfig
	// RequestPort and ReplyPort are ours (defaults 3704, 3705).
	RequestPort, ReplyPort int
	// Forward sends our own subnet's misses to the peers; without it we
	// still answer theirs.
	Forward bool
	// PeerPort is our MS-PCCRR port, reported for segments our store
	// holds (0: we do not report our store).
	PeerPort uint16
	// Local looks a segment up in our store.
	Local func(ctx context.Context, segmentID []byte) (LocalSegment, bool)
	// Remulticast probes our subnets for a peer's request (from UDP
	// 3703); nil answers from the store only.
	Remulticast *prober.Prober
	// Holders records what peers report.
	Holders       *holders.Table
	CollectWindow time.Duration
	PendingTTL    time.Duration
	Skew          time.Duration
	ForwardRate   float64
	PeerRate      float64
	// KeepaliveInterval and KeepaliveMisses (defaults 30 s and 3) decide
	// when a peer is unreachable: misses keepalives in a row, sent every
	// interval, without an authenticated message from it.
	KeepaliveInterval time.Duration
	KeepaliveMisses   int
	// OnPeerChange is told when a peer becomes reachable or unreachable
	// (nil: nobody). Calls for one peer come in order; it must not block.
	OnPeerChange func(PeerChange)
	Logger       *slog.Logger
}

// Stats are the forwarder's counters.
type Stats struct {
	Leaders []LeaderStats `json:"leaders"`
	// UnknownSources counts datagrams from addresses that are no
	// configured peer; Malformed those that were not protocol messages.
	UnknownSources uint64 `json:"unknown_sources"`
	Malformed      uint64 `json:"malformed"`
	// RateLimited counts probes not forwarded over the forward rate.
	RateLimited uint64 `json:"rate_limited"`
	// Remulticasts counts peer requests probed into our subnets.
	Remulticasts uint64 `json:"remulticasts"`
	// Late counts replies for requests no longer pending.
	Late uint64 `json:"late"`
	// Duplicates counts peer requests for a MessageID already handled.
	Duplicates uint64 `json:"duplicates"`
}

// Forwarder speaks the leader protocol.
type Forwarder struct {
	cfg   Config
	key   Key
	log   *slog.Logger
	peers peerSet
	guard *Guard

	reqConn, repConn *net.UDPConn
	limiter          *ratelimit.Limiter
	forwarded        *seen.Set[string] // MessageIDs we forwarded
	handled          *seen.Set[string] // MessageIDs peers asked about

	mu         sync.Mutex
	pending    map[string]*pending
	collecting map[string]*collect

	unknownSources, malformed, rateLimited, remulticasts, late, duplicates atomic.Uint64
	closing                                                                atomic.Bool
}

// pending is one of our probes awaiting replies.
type pending struct {
	answer   func(context.Context) bool
	answered bool
	expires  time.Time
}

// collect is one peer request being re-multicast.
type collect struct {
	peer    *peer
	replyTo netip.AddrPort
	version pccrd.Version
	ids     [][]byte
	want    map[string]bool
	sent    map[string]bool // segment+holder pairs already reported
	replies int
	expires time.Time
}

// Listen opens the request and reply sockets and resolves the peers.
func Listen(ctx context.Context, cfg Config) (*Forwarder, error) {
	if cfg.RequestPort == 0 {
		cfg.RequestPort = DefaultRequestPort
	}
	if cfg.ReplyPort == 0 {
		cfg.ReplyPort = DefaultReplyPort
	}
	if cfg.CollectWindow <= 0 {
		cfg.CollectWindow = DefaultCollectWindow
	}
	if cfg.PendingTTL <= 0 {
		cfg.PendingTTL = DefaultPendingTTL
	}
	if cfg.ForwardRate <= 0 {
		cfg.ForwardRate = DefaultForwardRate
	}
	if cfg.PeerRate <= 0 {
		cfg.PeerRate = DefaultPeerRate
	}
	if cfg.KeepaliveInterval <= 0 {
		cfg.KeepaliveInterval = DefaultKeepaliveInterval
	}
	if cfg.KeepaliveMisses <= 0 {
		cfg.KeepaliveMisses = DefaultKeepaliveMisses
	}
	if cfg.Holders == nil {
		cfg.Holders = holders.New(0, 0)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	if len(cfg.Secret) == 0 {
		return nil, errors.New("forward: no shared secret")
	}
	f := &Forwarder{
		cfg: cfg, key: DeriveKey(cfg.Secret), log: log, guard: NewGuard(cfg.Skew),
		limiter:    ratelimit.NewLimiter(cfg.ForwardRate, 2*cfg.ForwardRate),
		forwarded:  seen.New[string](time.Minute, 1<<16),
		handled:    seen.New[string](time.Minute, 1<<16),
		pending:    map[string]*pending{},
		collecting: map[string]*collect{},
	}
	start := time.Now()
	for _, pc := range cfg.Peers {
		f.peers.list = append(f.peers.list, newPeer(pc, cfg.PeerRate, start))
	}
	for _, err := range f.peers.resolveAll(ctx) {
		log.Warn("forward: peer leader not resolved (retried every minute)", "err", err)
	}
	var lc net.ListenConfig
	c, err := lc.ListenPacket(ctx, "udp", fmt.Sprintf(":%d", cfg.RequestPort))
	if err != nil {
		return nil, fmt.Errorf("forward: request port: %w", err)
	}
	f.reqConn = c.(*net.UDPConn)
	c, err = lc.ListenPacket(ctx, "udp", fmt.Sprintf(":%d", cfg.ReplyPort))
	if err != nil {
		f.reqConn.Close()
		return nil, fmt.Errorf("forward: reply port: %w", err)
	}
	f.repConn = c.(*net.UDPConn)
	return f, nil
}

// Serve handles requests and replies until ctx ends.
func (f *Forwarder) Serve(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	wg.Go(func() { errs <- f.readLoop(ctx, f.reqConn, f.handleRequestPort) })
	wg.Go(func() { errs <- f.readLoop(ctx, f.repConn, f.handleReplyPort) })
	wg.Go(func() { f.keepalives(ctx) })
	if f.cfg.Remulticast != nil {
		wg.Go(func() {
			if err := f.cfg.Remulticast.Receive(ctx, f.handleMatch); err != nil {
				errs <- err
			}
		})
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	lastResolve := time.Now()
	var err error
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case err = <-errs:
			if err != nil {
				break loop
			}
		case now := <-tick.C:
			f.expire(now)
			if now.Sub(lastResolve) > resolveEvery {
				lastResolve = now
				for _, err := range f.peers.resolveAll(ctx) {
					f.log.Debug("forward: peer leader not resolved", "err", err)
				}
			}
		}
	}
	f.closing.Store(true)
	cancel()
	f.reqConn.Close()
	f.repConn.Close()
	wg.Wait()
	return err
}

func (f *Forwarder) readLoop(ctx context.Context, c *net.UDPConn, handle func(context.Context, []byte, netip.AddrPort)) error {
	buf := make([]byte, MaxMessageSize+1)
	for {
		n, src, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			if f.closing.Load() || ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("forward: %w", err)
		}
		src = netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
		handle(ctx, buf[:n], src)
	}
}

// open authenticates a datagram from src and attributes it to a peer.
// The caller records it as heard from (unless it is an ack of nothing).
func (f *Forwarder) open(b []byte, src netip.AddrPort) (*Envelope, *peer) {
	p := f.peers.byAddr(src.Addr())
	if p == nil {
		f.unknownSources.Add(1)
		f.log.Debug("forward: datagram from an unknown address", "from", src)
		return nil, nil
	}
	e, err := Open(f.key, b)
	switch {
	case errors.Is(err, ErrAuth):
		p.authFailures.Add(1)
		f.log.Warn("forward: message failed authentication (wrong secret?)", "leader", p.name, "from", src)
		return nil, nil
	case err != nil:
		f.malformed.Add(1)
		f.log.Debug("forward: bad message", "leader", p.name, "from", src, "err", err)
		return nil, nil
	}
	if err := f.guard.Check(e, time.Now()); err != nil {
		p.rejected.Add(1)
		f.log.Warn("forward: message rejected", "leader", p.name, "from", src, "err", err)
		return nil, nil
	}
	return e, p
}

// handleRequestPort takes requests and keepalives.
func (f *Forwarder) handleRequestPort(ctx context.Context, b []byte, src netip.AddrPort) {
	e, p := f.open(b, src)
	if e == nil {
		return
	}
	p.heard(time.Now(), f.notify)
	switch e.Type {
	case TypeRequest:
		f.handleRequest(ctx, e, p, src)
	case TypeKeepalive:
		f.answerKeepalive(e, p, src)
	default:
		f.malformed.Add(1)
	}
}

// handleReplyPort takes replies and keepalive acks.
func (f *Forwarder) handleReplyPort(ctx context.Context, b []byte, src netip.AddrPort) {
	e, p := f.open(b, src)
	if e == nil {
		return
	}
	switch e.Type {
	case TypeReply:
		p.heard(time.Now(), f.notify)
		f.handleReply(ctx, e, p, src)
	case TypeKeepaliveAck:
		// Only an ack of a keepalive we sent proves the peer up now.
		if !p.acked(e.Ack.Nonce) {
			p.unmatchedAcks.Add(1)
			f.log.Debug("forward: keepalive ack of no keepalive outstanding", "leader", p.name, "from", src)
			return
		}
		p.acksReceived.Add(1)
		p.heard(time.Now(), f.notify)
	default:
		p.heard(time.Now(), f.notify)
		f.malformed.Add(1)
	}
}

// answerKeepalive acks a peer's keepalive, to its reply port.
func (f *Forwarder) answerKeepalive(e *Envelope, p *peer, src netip.AddrPort) {
	p.keepalivesReceived.Add(1)
	now := time.Now()
	if !p.keepaliveLimiter.Allow(now) {
		p.rateLimited.Add(1)
		return
	}
	ack := NewEnvelope(now)
	ack.Ack = &KeepaliveAck{Nonce: e.Nonce}
	b, err := Seal(f.key, ack)
	if err != nil {
		f.log.Debug("forward: keepalive ack not encoded", "err", err)
		return
	}
	to := netip.AddrPortFrom(src.Addr(), uint16(p.port+1))
	if _, err := f.repConn.WriteToUDPAddrPort(b, to); err != nil {
		f.log.Debug("forward: keepalive ack not sent", "leader", p.name, "err", err)
	}
}

// keepalives sends every peer a keepalive now and every interval, and
// before each round marks unreachable the peers that left the last
// KeepaliveMisses unanswered.
func (f *Forwarder) keepalives(ctx context.Context) {
	f.sendKeepalives(time.Now())
	tick := time.NewTicker(f.cfg.KeepaliveInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			for _, p := range f.peers.list {
				p.checkMissed(now, f.cfg.KeepaliveMisses, f.notify)
			}
			f.sendKeepalives(now)
		}
	}
}

var errUnresolved = errors.New("address not resolved")

func (f *Forwarder) sendKeepalives(now time.Time) {
	for _, p := range f.peers.list {
		env := NewEnvelope(now)
		env.Keepalive = &Keepalive{}
		to, ok := p.requestAddr()
		if !ok {
			p.sentKeepalive(env.Nonce, now, errUnresolved)
			continue
		}
		b, err := Seal(f.key, env)
		if err == nil {
			_, err = f.reqConn.WriteToUDPAddrPort(b, to)
		}
		if err != nil && f.closing.Load() {
			return
		}
		p.sentKeepalive(env.Nonce, now, err)
	}
}

// notify tells the observer of a peer's change and logs it.
func (f *Forwarder) notify(c PeerChange) {
	switch {
	case c.State == PeerUnreachable:
		f.log.Warn("forward: peer leader unreachable", "leader", c.Name, "address", c.Address, "reason", c.Reason)
	case c.From == PeerUnreachable:
		f.log.Info("forward: peer leader reachable again", "leader", c.Name, "address", c.Address, "down_for", roundDuration(c.DownFor))
	default:
		f.log.Info("forward: peer leader reachable", "leader", c.Name, "address", c.Address)
	}
	if f.cfg.OnPeerChange != nil {
		f.cfg.OnPeerChange(c)
	}
}

// Forward asks the peer leaders about the missing segments of a probe
// from our subnet; answer is called (once) when a reply names holders.
// It reports whether the probe was forwarded.
func (f *Forwarder) Forward(p *pccrd.Probe, missing [][]byte, answer func(context.Context) bool) bool {
	if !f.cfg.Forward || len(f.peers.list) == 0 || len(missing) == 0 || f.closing.Load() {
		return false
	}
	now := time.Now()
	if f.forwarded.Has(p.MessageID, now) {
		return true // already on its way
	}
	if !f.limiter.Allow(now) {
		f.rateLimited.Add(1)
		return false
	}
	f.forwarded.Add(p.MessageID, now)
	if len(missing) > MaxSegments {
		missing = missing[:MaxSegments]
	}
	f.mu.Lock()
	f.pending[p.MessageID] = &pending{answer: answer, expires: now.Add(f.cfg.PendingTTL)}
	f.mu.Unlock()
	req := &Request{MessageID: p.MessageID, Version: p.Version, SegmentIDs: missing}
	sent := false
	for _, peer := range f.peers.list {
		to, ok := peer.requestAddr()
		if !ok {
			continue
		}
		env := NewEnvelope(now)
		env.Request = req
		b, err := Seal(f.key, env)
		if err != nil {
			f.log.Debug("forward: request not encoded", "err", err)
			return false
		}
		if _, err := f.reqConn.WriteToUDPAddrPort(b, to); err != nil {
			f.log.Debug("forward: request not sent", "leader", peer.name, "err", err)
			continue
		}
		peer.forwardsSent.Add(1)
		sent = true
	}
	return sent
}

// handleRequest answers a peer's request from our store and, for the
// rest, re-multicasts the probe into our subnets. It never forwards.
func (f *Forwarder) handleRequest(ctx context.Context, e *Envelope, p *peer, src netip.AddrPort) {
	now := time.Now()
	if !p.limiter.Allow(now) {
		p.rateLimited.Add(1)
		return
	}
	p.forwardsReceived.Add(1)
	req := e.Request
	if !f.handled.Add(req.MessageID, now) {
		f.duplicates.Add(1)
		return
	}
	replyTo := netip.AddrPortFrom(src.Addr(), uint16(p.port+1))
	var entries []Entry
	var missing [][]byte
	for _, id := range req.SegmentIDs {
		if f.cfg.Local != nil && f.cfg.PeerPort != 0 {
			if seg, ok := f.cfg.Local(ctx, id); ok {
				entries = append(entries, Entry{SegmentID: id, Version: seg.Version, Size: seg.Size,
					Complete: seg.Complete, Blocks: uint16(min(seg.Blocks, 0xffff)),
					Holders: []netip.AddrPort{netip.AddrPortFrom(netip.IPv4Unspecified(), f.cfg.PeerPort)}})
				continue
			}
		}
		missing = append(missing, id)
	}
	if len(entries) > 0 {
		f.reply(p, replyTo, req.MessageID, entries)
	}
	if len(missing) == 0 || f.cfg.Remulticast == nil {
		return
	}
	c := &collect{peer: p, replyTo: replyTo, version: req.Version, ids: missing,
		want: map[string]bool{}, sent: map[string]bool{}, expires: now.Add(f.cfg.CollectWindow)}
	for _, id := range missing {
		c.want[string(id)] = true
	}
	f.mu.Lock()
	if len(f.collecting) >= MaxCollecting {
		f.mu.Unlock()
		p.rateLimited.Add(1)
		return
	}
	f.collecting[req.MessageID] = c
	f.mu.Unlock()
	// IPv4 first: a client answers one copy of a MessageID, and the relay
	// in another branch reaches IPv4 more surely than IPv6. The IPv6 copy
	// follows for clients that have no IPv4 (and is ignored by the rest).
	probe := &pccrd.Probe{MessageID: req.MessageID, Version: req.Version, SegmentIDs: missing}
	err4 := f.cfg.Remulticast.SendFamily(probe, false)
	time.AfterFunc(ipv6Delay, func() {
		if !f.closing.Load() {
			f.cfg.Remulticast.SendFamily(probe, true)
		}
	})
	if err4 != nil {
		f.log.Debug("forward: IPv4 re-multicast failed", "err", err4)
	}
	f.remulticasts.Add(1)
}

// handleMatch turns a ProbeMatch heard on 3703 into a reply to the peer
// whose request it answers.
func (f *Forwarder) handleMatch(m prober.Match) {
	f.mu.Lock()
	c, ok := f.collecting[m.Match.RelatesTo]
	if !ok || time.Now().After(c.expires) || c.replies >= maxRepliesPerRequest {
		f.mu.Unlock()
		return
	}
	// Only the responder's own address is believed as a holder: a
	// ProbeMatch naming a third host could aim our relay anywhere.
	var holder netip.AddrPort
	for _, x := range m.Match.XAddrs {
		ap, err := pccrd.ParseXAddr(x)
		if err == nil && ap.Addr().Unmap() == m.From.Addr().Unmap() {
			holder = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
			break
		}
	}
	if !holder.IsValid() {
		f.mu.Unlock()
		return
	}
	var entries []Entry
	add := func(id []byte, blocks uint32, complete bool) {
		key := string(id) + holder.String()
		if !c.want[string(id)] || c.sent[key] {
			return
		}
		c.sent[key] = true
		entries = append(entries, Entry{SegmentID: id, Blocks: uint16(min(blocks, 0xffff)), Complete: complete,
			Version: pccrc.Version(c.version), Holders: []netip.AddrPort{holder}})
	}
	if m.Match.Version == pccrd.V1 {
		for i, tok := range m.Match.Tokens {
			id, err := hex.DecodeString(strings.TrimSpace(tok))
			if err != nil {
				continue
			}
			var blocks uint32
			if i < len(m.Match.BlockCounts) {
				if blocks = m.Match.BlockCounts[i]; blocks == 0 {
					continue // iPXE's reading: 0 means not held
				}
			}
			add(id, blocks, false)
		}
	} else {
		for i, a := range m.Match.Availability {
			if i < len(c.ids) && a.HasSome() {
				add(c.ids[i], 0, a.HasAll())
			}
		}
	}
	if len(entries) > 0 {
		c.replies++
	}
	f.mu.Unlock()
	if len(entries) > 0 {
		f.reply(c.peer, c.replyTo, m.Match.RelatesTo, entries)
	}
}

// reply sends entries to a peer, split into datagrams of entriesPerReply.
func (f *Forwarder) reply(p *peer, to netip.AddrPort, messageID string, entries []Entry) {
	for len(entries) > 0 {
		n := min(len(entries), entriesPerReply)
		env := NewEnvelope(time.Now())
		env.Reply = &Reply{MessageID: messageID, Entries: entries[:n]}
		entries = entries[n:]
		b, err := Seal(f.key, env)
		if err != nil {
			f.log.Debug("forward: reply not encoded", "err", err)
			return
		}
		if _, err := f.repConn.WriteToUDPAddrPort(b, to); err != nil {
			f.log.Debug("forward: reply not sent", "leader", p.name, "err", err)
			return
		}
		p.matchesSent.Add(uint64(n))
	}
}

// handleReply records the holders a peer found and answers our client.
func (f *Forwarder) handleReply(ctx context.Context, e *Envelope, p *peer, src netip.AddrPort) {
	rep := e.Reply
	f.mu.Lock()
	pend, ok := f.pending[rep.MessageID]
	f.mu.Unlock()
	if !ok {
		f.late.Add(1)
		return
	}
	p.matchesReceived.Add(uint64(len(rep.Entries)))
	recorded := false
	for _, en := range rep.Entries {
		seg := holders.Segment{ID: en.SegmentID, Version: en.Version, Size: en.Size,
			Blocks: int(en.Blocks), Complete: en.Complete}
		for _, h := range en.Holders {
			a := h.Addr().Unmap()
			switch {
			case h.Port() == 0:
				continue
			case a.IsUnspecified():
				a = src.Addr() // the replying leader itself
			case a.IsMulticast() || a.IsLoopback() || a.IsUnspecified():
				continue // never aim the relay at ourselves or a group
			}
			seg.Holders = append(seg.Holders, holders.Holder{Addr: netip.AddrPortFrom(a, h.Port()), Leader: p.name})
		}
		if len(seg.Holders) > 0 {
			f.cfg.Holders.Add(seg)
			recorded = true
		}
	}
	if !recorded {
		return
	}
	f.mu.Lock()
	first := !pend.answered
	pend.answered = true
	f.mu.Unlock()
	if first {
		pend.answer(ctx)
	}
}

func (f *Forwarder) expire(now time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for id, p := range f.pending {
		if now.After(p.expires) {
			delete(f.pending, id)
		}
	}
	for id, c := range f.collecting {
		if now.After(c.expires) {
			delete(f.collecting, id)
		}
	}
}

// CountRelayBytes adds bytes the relay fetched from a holder the named
// leader reported.
func (f *Forwarder) CountRelayBytes(leader string, n int) {
	if p := f.peers.byName(leader); p != nil {
		p.relayBytes.Add(uint64(n))
	}
}

// Stats returns the counters.
func (f *Forwarder) Stats() Stats {
	s := Stats{UnknownSources: f.unknownSources.Load(), Malformed: f.malformed.Load(),
		RateLimited: f.rateLimited.Load(), Remulticasts: f.remulticasts.Load(),
		Late: f.late.Load(), Duplicates: f.duplicates.Load()}
	for _, p := range f.peers.list {
		s.Leaders = append(s.Leaders, p.snapshot())
	}
	return s
}
