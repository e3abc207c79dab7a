package discovery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/outpost-appliance/outpost/leader/internal/ratelimit"
	"github.com/outpost-appliance/outpost/leader/internal/seen"
	"github.com/outpost-appliance/outpost/leader/mcast"
	"github.com/outpost-appliance/outpost/peerdist/pccrd"
)

// Defaults of a Responder.
const (
	DefaultReplyDelayMin = time.Millisecond
	DefaultReplyDelayMax = 65 * time.Millisecond // APP_MAX_DELAY, protocols.md §5.5
	// ProbeSourcePort is the port leaders re-multicast forwarded probes
	// from; such probes are never forwarded again.
	ProbeSourcePort = 3703

	messageIDTTL = 30 * time.Second // iPXE repeats after 1 s; Windows within 250 ms
	messageIDMax = 65536
	queueSize    = 1024
	workers      = 2
	rejoinEvery  = 5 * time.Second
	readBuffer   = 1 << 20
)

// Holdings tells what is known of a segment.
type Holdings interface {
	Holding(ctx context.Context, segmentID []byte) Holding
}

// Origin is where a probe came from: the client to answer and the
// interface whose address to answer with.
type Origin struct {
	Src       netip.AddrPort
	IfIndex   int
	Interface string
	Received  time.Time
}

// Config configures a Responder.
type Config struct {
	// Port is the discovery port (default 3702).
	Port int
	// Interfaces are the LAN interfaces to serve, by name; empty means
	// every interface that is up and multicast-capable, loopback aside.
	Interfaces []string
	Holdings   Holdings
	// PeerPort is the MS-PCCRR port for locally held segments, RelayPort
	// the relay's; 0 means segments of that kind are not answered for.
	PeerPort, RelayPort uint16
	// ReplyDelayMin and ReplyDelayMax bound the random wait before a
	// reply (default 1–65 ms).
	ReplyDelayMin, ReplyDelayMax time.Duration
	// RatePerSource caps probes per second accepted from one address
	// (0: no limit); bursts of BurstPerSource pass (0: twice the rate).
	RatePerSource, BurstPerSource int
	// Forward, if set, is offered every probe with segments held nowhere
	// known (missing); it reports whether it took the probe, which it
	// later answers with AnswerNow.
	Forward func(p *pccrd.Probe, missing [][]byte, o Origin) bool
	// InstanceID is the AppSequence InstanceId (grows with each start).
	InstanceID uint64
	Logger     *slog.Logger
}

// Responder answers discovery probes.
type Responder struct {
	cfg      Config
	log      *slog.Logger
	endpoint string
	conns    []*mcast.Conn
	ifaces   *ifaceTable
	limiter  *ratelimit.Keyed[netip.Addr]
	handled  *seen.Set[string]
	msgNum   atomic.Uint64
	queue    chan work
	wg       sync.WaitGroup
	closing  atomic.Bool
	bufPool  sync.Pool
}

type work struct {
	buf    *[]byte
	n      int
	probe  *pccrd.Probe // decoded by the XDP fast path (buf is nil then)
	origin Origin
	conn   *mcast.Conn
	ifc    *iface
}

// Listen opens the discovery sockets (IPv4 and, where the host has it,
// IPv6) and joins the groups on the interfaces present now; interfaces
// that appear later are joined by Serve.
func Listen(ctx context.Context, cfg Config) (*Responder, error) {
	if cfg.Port == 0 {
		cfg.Port = mcast.DiscoveryPort
	}
	if cfg.ReplyDelayMax == 0 && cfg.ReplyDelayMin == 0 {
		cfg.ReplyDelayMin, cfg.ReplyDelayMax = DefaultReplyDelayMin, DefaultReplyDelayMax
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	r := &Responder{
		cfg:      cfg,
		log:      log,
		endpoint: pccrd.NewMessageID(), // Windows makes a new GUID per start
		ifaces:   newIfaceTable(cfg.Interfaces),
		limiter:  ratelimit.NewKeyed[netip.Addr](float64(cfg.RatePerSource), float64(burst(cfg)), 4096),
		handled:  seen.New[string](messageIDTTL, messageIDMax),
		queue:    make(chan work, queueSize),
	}
	r.bufPool.New = func() any { b := make([]byte, pccrd.MaxDatagramSize); return &b }
	opt := mcast.Options{ReuseAddr: true, Loopback: true, ReadBuffer: readBuffer}
	c4, err := mcast.Listen(ctx, "udp4", cfg.Port, opt)
	if err != nil {
		return nil, fmt.Errorf("discovery: %w", err)
	}
	r.conns = append(r.conns, c4)
	if c6, err := mcast.Listen(ctx, "udp6", cfg.Port, opt); err == nil {
		r.conns = append(r.conns, c6)
	} else {
		log.Warn("discovery: no IPv6 socket; answering IPv4 probes only", "err", err)
	}
	r.join()
	return r, nil
}

// burst is the per-source bucket size: configured, else twice the rate.
func burst(cfg Config) int {
	if cfg.BurstPerSource > 0 {
		return cfg.BurstPerSource
	}
	return 2 * cfg.RatePerSource
}

// join joins the groups on interfaces not yet joined.
func (r *Responder) join() {
	added, missing := r.ifaces.resolve()
	for _, ifc := range added {
		for _, c := range r.conns {
			group := mcast.GroupV4
			if c.IPv6() {
				group = mcast.GroupV6
			}
			if err := c.Join(ifc.index, group); err != nil {
				r.log.Warn("discovery: cannot join the discovery group", "interface", ifc.name, "group", group, "err", err)
			}
		}
		r.log.Info("discovery: serving interface", "interface", ifc.name, "index", ifc.index)
	}
	if len(missing) > 0 {
		r.log.Debug("discovery: configured interfaces not present yet", "interfaces", missing)
	}
}

// Serve answers probes until ctx ends.
func (r *Responder) Serve(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, len(r.conns))
	for _, c := range r.conns {
		r.wg.Go(func() { errs <- r.read(c) })
	}
	var workersWG sync.WaitGroup
	for range workers {
		workersWG.Go(func() { r.work(ctx) })
	}
	tick := time.NewTicker(rejoinEvery)
	defer tick.Stop()
	var err error
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-tick.C:
			r.join()
		case err = <-errs:
			err = fmt.Errorf("discovery: %w", err)
			break loop
		}
	}
	r.closing.Store(true)
	for _, c := range r.conns {
		c.Close()
	}
	r.wg.Wait()
	cancel()
	workersWG.Wait()
	return err
}

// read receives datagrams and queues those worth parsing. The per-source
// limit is applied here, before any copy or parse, so that a flood costs
// as little as possible.
func (r *Responder) read(c *mcast.Conn) error {
	for {
		bp := r.bufPool.Get().(*[]byte)
		n, meta, err := c.ReadFrom(*bp)
		if err != nil {
			r.bufPool.Put(bp)
			if r.closing.Load() {
				return nil
			}
			return err
		}
		ifc := r.ifaces.lookup(meta.IfIndex)
		if ifc == nil {
			r.bufPool.Put(bp) // not a served interface (a WAN port)
			continue
		}
		ifc.stats.seen.Add(1)
		now := time.Now()
		if !r.limiter.Allow(meta.Src.Addr(), now) {
			ifc.stats.rateLimited.Add(1)
			r.bufPool.Put(bp)
			continue
		}
		w := work{buf: bp, n: n, conn: c, ifc: ifc,
			origin: Origin{Src: meta.Src, IfIndex: meta.IfIndex, Interface: ifc.name, Received: now}}
		select {
		case r.queue <- w:
		default:
			ifc.stats.overloaded.Add(1)
			r.bufPool.Put(bp)
		}
	}
}

func (r *Responder) work(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case w := <-r.queue:
			r.handle(ctx, w)
			if w.buf != nil {
				r.bufPool.Put(w.buf)
			}
		}
	}
}

func (r *Responder) handle(ctx context.Context, w work) {
	p, err := w.probe, error(nil)
	if p == nil {
		p, err = pccrd.ParseProbe((*w.buf)[:w.n])
	}
	switch {
	case errors.Is(err, pccrd.ErrNotPeerDist):
		w.ifc.stats.notPeerDist.Add(1)
		return
	case err != nil:
		w.ifc.stats.malformed.Add(1)
		r.log.Debug("discovery: malformed probe", "from", w.origin.Src, "err", err)
		return
	}
	if !r.handled.Add(p.MessageID, w.origin.Received) {
		w.ifc.stats.duplicates.Add(1)
		return
	}
	plan := r.plan(ctx, p)
	if plan.Match != nil && r.portFor(plan) != 0 {
		delay := r.replyDelay()
		time.AfterFunc(delay, func() {
			if r.closing.Load() {
				return
			}
			if err := r.send(w.conn, w.ifc, w.origin, plan); err != nil {
				r.log.Debug("discovery: reply not sent", "to", w.origin.Src, "err", err)
			}
		})
		return
	}
	// A leader's re-multicast (from 3703) is never forwarded again: that
	// is the loop guard for two leaders sharing a subnet.
	if len(plan.Missing) > 0 && r.cfg.Forward != nil && w.origin.Src.Port() != ProbeSourcePort {
		if r.cfg.Forward(p, plan.Missing, w.origin) {
			w.ifc.stats.forwarded.Add(1)
			return
		}
	}
	w.ifc.stats.silent.Add(1)
}

func (r *Responder) plan(ctx context.Context, p *pccrd.Probe) Plan {
	held := make([]Holding, len(p.SegmentIDs))
	for i, id := range p.SegmentIDs {
		h := r.cfg.Holdings.Holding(ctx, id)
		switch {
		case h.Where == Local && r.cfg.PeerPort == 0 && r.cfg.RelayPort == 0,
			h.Where == Relayed && r.cfg.RelayPort == 0:
			h = Holding{}
		}
		held[i] = h
	}
	return MakePlan(p, held, time.Now())
}

// portFor is the port XAddrs names: the peer port when everything
// answered is local, else the relay (which serves local blocks too).
func (r *Responder) portFor(plan Plan) uint16 {
	if plan.Relayed || r.cfg.PeerPort == 0 {
		return r.cfg.RelayPort
	}
	return r.cfg.PeerPort
}

func (r *Responder) replyDelay() time.Duration {
	lo, hi := r.cfg.ReplyDelayMin, r.cfg.ReplyDelayMax
	if hi <= lo {
		return lo
	}
	return lo + rand.N(hi-lo+1)
}

// send fills in the addressing and sends the reply from our address on
// the probe's interface and subnet.
func (r *Responder) send(c *mcast.Conn, ifc *iface, o Origin, plan Plan) error {
	src, err := r.ifaces.source(ifc, o.Src.Addr(), time.Now())
	if err != nil {
		return fmt.Errorf("interface %s: %w", ifc.name, err)
	}
	m := *plan.Match
	m.MessageID = pccrd.NewMessageID()
	m.InstanceID = r.cfg.InstanceID
	m.MessageNumber = r.msgNum.Add(1)
	m.EndpointAddress = r.endpoint
	m.XAddrs = []string{pccrd.XAddr(netip.AddrPortFrom(src, r.portFor(plan)))}
	b, err := m.Marshal()
	if err != nil {
		return err
	}
	if err := c.WriteTo(b, o.Src, src, o.IfIndex); err != nil {
		return err
	}
	ifc.stats.answered.Add(1)
	return nil
}

// HandleCaptured answers a probe the XDP fast path decoded (it already
// applied the per-source rate) exactly as one read from the socket: the
// same MessageID de-duplication, plan, reply delay, forwarding and
// counters. ifindex is the interface it arrived on; probes from
// interfaces not served are ignored. It reports whether the probe was
// queued.
func (r *Responder) HandleCaptured(p *pccrd.Probe, src netip.AddrPort, ifindex int) bool {
	if r.closing.Load() {
		return false
	}
	ifc := r.ifaces.lookup(ifindex)
	if ifc == nil {
		return false
	}
	var conn *mcast.Conn
	for _, c := range r.conns {
		if c.IPv6() == src.Addr().Is6() {
			conn = c
		}
	}
	if conn == nil {
		return false
	}
	ifc.stats.seen.Add(1)
	ifc.stats.captured.Add(1)
	w := work{probe: p, conn: conn, ifc: ifc,
		origin: Origin{Src: src, IfIndex: ifindex, Interface: ifc.name, Received: time.Now()}}
	select {
	case r.queue <- w:
		return true
	default:
		ifc.stats.overloaded.Add(1)
		return false
	}
}

// AnswerNow answers a probe the forwarder took once other leaders have
// reported holders: the plan is made again from what is known now and the
// reply sent at once (the client has waited long enough). It reports
// whether a reply was sent.
func (r *Responder) AnswerNow(ctx context.Context, p *pccrd.Probe, o Origin) bool {
	if r.closing.Load() {
		return false
	}
	ifc := r.ifaces.lookup(o.IfIndex)
	if ifc == nil {
		return false
	}
	plan := r.plan(ctx, p)
	if plan.Match == nil || r.portFor(plan) == 0 {
		return false
	}
	var conn *mcast.Conn
	for _, c := range r.conns {
		if c.IPv6() == o.Src.Addr().Is6() {
			conn = c
		}
	}
	if conn == nil {
		return false
	}
	if err := r.send(conn, ifc, o, plan); err != nil {
		r.log.Debug("discovery: relayed answer not sent", "to", o.Src, "err", err)
		return false
	}
	return true
}

// Stats returns the per-interface counters.
func (r *Responder) Stats() []InterfaceStats { return r.ifaces.snapshot() }
