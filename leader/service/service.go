// Package service runs Outpost as a permanent subnet leader: the discovery
// responder on every LAN interface, forwarding between leaders, the
// re-multicast of peers' probes and the data relay, as one supervised
// service beside the hosted cache whose store it answers from. Stats gives
// the management API a snapshot of every counter.
package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/outpost-appliance/outpost/cache/store"
	"github.com/outpost-appliance/outpost/ebpf/probexdp"
	"github.com/outpost-appliance/outpost/leader/discovery"
	"github.com/outpost-appliance/outpost/leader/forward"
	"github.com/outpost-appliance/outpost/leader/holders"
	"github.com/outpost-appliance/outpost/leader/prober"
	"github.com/outpost-appliance/outpost/leader/relay"
	"github.com/outpost-appliance/outpost/peerdist/pccrd"
)

// Config is what the leader needs; FromConfig fills it from outpost.toml.
type Config struct {
	// Interfaces are the LAN interfaces served, by name; empty: every
	// interface that is up and multicast-capable.
	Interfaces []string
	// PeerPort is the hosted cache's MS-PCCRR peer port ([peer] listen),
	// named in answers for locally held segments; 0: not answered.
	PeerPort uint16
	// RelayListen is the relay's address ([leader] relay_listen); ""
	// switches the relay, and so forwarding our misses, off.
	RelayListen                  string
	ReplyDelayMin, ReplyDelayMax time.Duration
	// ProbeRatePerSource and ProbeBurstPerSource bound the probes
	// accepted from one source (0: no limit; a burst of 0 is twice the
	// rate), on the XDP fast path and the socket path alike.
	ProbeRatePerSource, ProbeBurstPerSource int
	// XDP is how the discovery fast path attaches to the LAN interfaces:
	// "auto", "native" or "generic"; "" or "off" leaves discovery to the
	// socket path. With no Interfaces named it attaches to every
	// interface discovery serves only when XDPAnyInterface is set (the
	// appliance, whose interfaces are all its own); a daemon on a shared
	// host needs them named.
	XDP             string
	XDPAnyInterface bool
	// Forward sends our subnets' misses to the peers.
	Forward bool
	Peers   []forward.PeerConfig
	Secret  []byte
	// Store returns the hosted cache's open store, nil while it is not.
	Store  func() *store.Store
	Logger *slog.Logger

	// Ports, 0 for the standard ones (tests move them).
	DiscoveryPort, RemulticastPort, RequestPort, ReplyPort int
	CollectWindow                                          time.Duration
	// KeepaliveInterval is how often each peer leader gets a keepalive
	// (0: forward.DefaultKeepaliveInterval; tests shorten it).
	KeepaliveInterval time.Duration
}

// Stats is a snapshot of the leader's counters for the management API.
type Stats struct {
	// InstanceID is the current AppSequence InstanceId.
	InstanceID uint64                     `json:"instance_id"`
	Interfaces []discovery.InterfaceStats `json:"interfaces"`
	// Forwarding is nil when no peer leader is configured.
	Forwarding *forward.Stats `json:"forwarding,omitempty"`
	// RelayAddr is where the relay listens ("" when it does not).
	RelayAddr string      `json:"relay_addr"`
	Relay     relay.Stats `json:"relay"`
	// RemoteSegments counts segments known to be held in other subnets.
	RemoteSegments int `json:"remote_segments"`
	// XDP is the discovery fast path per interface (attached or tried);
	// XDPError says why it does not run at all ("" when it does or is
	// off by configuration).
	XDP      map[string]probexdp.InterfaceStatus `json:"xdp,omitempty"`
	XDPError string                              `json:"xdp_error,omitempty"`
}

// Service is the supervised leader service.
type Service struct {
	cfg     Config
	log     *slog.Logger
	holders *holders.Table
	relay   *relay.Server

	mu             sync.Mutex
	instanceID     uint64
	responder      *discovery.Responder
	forwarder      *forward.Forwarder
	relayAddr      string
	xdp            *probexdp.Manager
	xdpErr         string
	xdpUnavailable func(iface string, err error)
	peerObserver   func(forward.PeerChange)
	// peerOutages are the peers (by name and address) last reported
	// unreachable, kept across restarts of the forwarder: one outage is
	// reported once, and its end with its whole length.
	peerOutages map[string]time.Time
}

// New returns the leader service.
func New(cfg Config) *Service {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	s := &Service{cfg: cfg, log: log, holders: holders.New(0, 0)}
	s.relay = relay.New(relay.Config{Store: cfg.Store, Holders: s.holders, Logger: log, Relayed: s.countRelayed})
	return s
}

// Name implements the supervisor's Service.
func (s *Service) Name() string { return "leader" }

// Stats returns the current counters.
func (s *Service) Stats() Stats {
	s.mu.Lock()
	resp, fwd, id, relayAddr, xdp, xdpErr := s.responder, s.forwarder, s.instanceID, s.relayAddr, s.xdp, s.xdpErr
	s.mu.Unlock()
	st := Stats{InstanceID: id, RelayAddr: relayAddr, Relay: s.relay.Stats(), RemoteSegments: s.holders.Len(), XDPError: xdpErr}
	if xdp != nil {
		st.XDP = xdp.Status()
	}
	if resp != nil {
		st.Interfaces = resp.Stats()
	}
	if fwd != nil {
		fs := fwd.Stats()
		st.Forwarding = &fs
	}
	return st
}

// ObserveXDP sets the function told when the discovery fast path cannot
// run on an interface (the appliance logs event 140 xdp-unavailable).
func (s *Service) ObserveXDP(fn func(iface string, err error)) {
	s.mu.Lock()
	s.xdpUnavailable = fn
	s.mu.Unlock()
}

// ObservePeers sets the function told when a peer leader becomes
// unreachable or reachable (the appliance logs events 130 and 131).
// Becoming reachable from unknown (at start-up) is not told, unless the
// peer was unreachable before the leader service restarted.
func (s *Service) ObservePeers(fn func(forward.PeerChange)) {
	s.mu.Lock()
	s.peerObserver = fn
	s.mu.Unlock()
}

// peerChanged passes a forwarder's peer change on to the observer, as
// one story across forwarder restarts (a new forwarder starts with every
// peer unknown).
func (s *Service) peerChanged(c forward.PeerChange) {
	key := c.Name + "\x00" + c.Address
	s.mu.Lock()
	if s.peerOutages == nil {
		s.peerOutages = map[string]time.Time{}
	}
	downSince, down := s.peerOutages[key]
	tell := true
	switch c.State {
	case forward.PeerUnreachable:
		if down {
			tell = false // the outage reported before the restart goes on
		} else {
			s.peerOutages[key] = c.DownSince
		}
	case forward.PeerReachable:
		delete(s.peerOutages, key)
		switch {
		case c.From == forward.PeerUnreachable:
		case down:
			c.From, c.DownSince, c.DownFor = forward.PeerUnreachable, downSince, c.At.Sub(downSince)
		default:
			tell = false
		}
	}
	fn := s.peerObserver
	s.mu.Unlock()
	if tell && fn != nil {
		fn(c)
	}
}

func (s *Service) xdpNotAvailable(iface string, err error) {
	s.mu.Lock()
	fn := s.xdpUnavailable
	s.mu.Unlock()
	if fn != nil {
		fn(iface, err)
	}
}

func (s *Service) countRelayed(leader string, n int) {
	s.mu.Lock()
	fwd := s.forwarder
	s.mu.Unlock()
	if fwd != nil {
		fwd.CountRelayBytes(leader, n)
	}
}

// nextInstanceID is the start time in seconds (as Windows 7 uses), kept
// growing across restarts within a second (protocols.md §5.4).
func (s *Service) nextInstanceID() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.instanceID = max(uint64(time.Now().Unix()), s.instanceID+1)
	return s.instanceID
}

// Run serves until ctx ends. It needs the hosted cache's store; when the
// hosted cache restarts (a new store), Run returns so that the
// supervisor starts it again on the new one.
func (s *Service) Run(ctx context.Context, ready func()) error {
	st := s.cfg.Store()
	if st == nil {
		return errors.New("leader: the segment store is not open (hosted cache not running)")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	defer wg.Wait()
	defer cancel()

	var relayPort uint16
	var ln net.Listener
	if s.cfg.RelayListen != "" {
		var err error
		if ln, err = net.Listen("tcp", s.cfg.RelayListen); err != nil {
			// Answering for this subnet's own store matters more than
			// relaying: go on without the relay (and so without
			// forwarding our misses), loudly.
			s.log.Error("leader: relay not listening; probes for other subnets' content go unanswered", "addr", s.cfg.RelayListen, "err", err)
		}
	}
	if ln != nil {
		relayPort = uint16(ln.Addr().(*net.TCPAddr).Port)
		hs := &http.Server{Handler: s.relay.Handler(), ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 2 * time.Minute,
			ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelDebug)}
		wg.Go(func() {
			if err := hs.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				errs <- fmt.Errorf("leader: relay: %w", err)
			}
		})
		wg.Go(func() {
			<-ctx.Done()
			sctx, c := context.WithTimeout(context.Background(), 3*time.Second)
			defer c()
			if hs.Shutdown(sctx) != nil {
				hs.Close()
			}
		})
		s.log.Info("leader: relay listening", "addr", ln.Addr())
	}

	var fwd *forward.Forwarder
	if len(s.cfg.Peers) > 0 {
		remulticast, err := prober.Open(ctx, prober.Options{Port: s.port(s.cfg.RemulticastPort, discovery.ProbeSourcePort),
			Interfaces: interfaceIndexes(s.cfg.Interfaces)})
		if err != nil {
			return fmt.Errorf("leader: re-multicast socket: %w", err)
		}
		defer remulticast.Close()
		wg.Go(func() { refreshInterfaces(ctx, remulticast, s.cfg.Interfaces) })
		fwd, err = forward.Listen(ctx, forward.Config{
			Secret: s.cfg.Secret, Peers: s.cfg.Peers,
			RequestPort: s.cfg.RequestPort, ReplyPort: s.cfg.ReplyPort,
			Forward: s.cfg.Forward && relayPort != 0, PeerPort: s.cfg.PeerPort,
			Local: func(ctx context.Context, id []byte) (forward.LocalSegment, bool) {
				info, err := st.Segment(ctx, id)
				if err != nil || info.HeldBlocks() == 0 {
					return forward.LocalSegment{}, false
				}
				return forward.LocalSegment{Version: info.Version, Size: info.Size, Blocks: info.HeldBlocks(), Complete: info.Complete()}, true
			},
			Remulticast: remulticast, Holders: s.holders, CollectWindow: s.cfg.CollectWindow,
			KeepaliveInterval: s.cfg.KeepaliveInterval, OnPeerChange: s.peerChanged,
			Logger: s.log,
		})
		if err != nil {
			return fmt.Errorf("leader: %w", err)
		}
	}

	var resp *discovery.Responder
	dcfg := discovery.Config{
		Port: s.cfg.DiscoveryPort, Interfaces: s.cfg.Interfaces,
		Holdings: holdings{store: st, holders: s.holders},
		PeerPort: s.cfg.PeerPort, RelayPort: relayPort,
		ReplyDelayMin: s.cfg.ReplyDelayMin, ReplyDelayMax: s.cfg.ReplyDelayMax,
		RatePerSource: s.cfg.ProbeRatePerSource, BurstPerSource: s.cfg.ProbeBurstPerSource,
		InstanceID: s.nextInstanceID(),
		Logger:     s.log,
	}
	if fwd != nil && s.cfg.Forward && relayPort != 0 {
		dcfg.Forward = func(p *pccrd.Probe, missing [][]byte, o discovery.Origin) bool {
			return fwd.Forward(p, missing, func(ctx context.Context) bool { return resp.AnswerNow(ctx, p, o) })
		}
	}
	resp, err := discovery.Listen(ctx, dcfg)
	if err != nil {
		return fmt.Errorf("leader: %w", err)
	}
	s.mu.Lock()
	s.responder, s.forwarder = resp, fwd
	s.relayAddr = ""
	if ln != nil {
		s.relayAddr = ln.Addr().String()
	}
	s.mu.Unlock()

	wg.Go(func() {
		if err := resp.Serve(ctx); err != nil {
			errs <- err
		}
	})
	if stop := s.startXDP(ctx, st, resp, fwd != nil && dcfg.Forward != nil); stop != nil {
		defer stop()
	}
	if fwd != nil {
		wg.Go(func() {
			if err := fwd.Serve(ctx); err != nil {
				errs <- err
			}
		})
	}
	s.log.Info("leader: serving", "interfaces", s.cfg.Interfaces, "peer_port", s.cfg.PeerPort,
		"relay_port", relayPort, "peers", len(s.cfg.Peers), "forward", dcfg.Forward != nil)
	ready()

	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-errs:
			return err
		case <-tick.C:
			if s.cfg.Store() != st {
				return errors.New("leader: the segment store was reopened; restarting on the new one")
			}
		}
	}
}

func (s *Service) port(configured, standard int) int {
	if configured != 0 {
		return configured
	}
	return standard
}

// holdings answers discovery from the store, then the remote holders.
type holdings struct {
	store   *store.Store
	holders *holders.Table
}

func (h holdings) Holding(ctx context.Context, id []byte) discovery.Holding {
	if info, err := h.store.Segment(ctx, id); err == nil && info.HeldBlocks() > 0 {
		return discovery.Holding{Where: discovery.Local, Blocks: info.HeldBlocks(), Complete: info.Complete(), Since: info.FirstSeen}
	}
	if seg, ok := h.holders.Lookup(id); ok {
		return discovery.Holding{Where: discovery.Relayed, Blocks: seg.Blocks, Complete: seg.Complete, Since: seg.Learned}
	}
	return discovery.Holding{}
}

// interfaceIndexes resolves interface names (all multicast interfaces
// when none are named) to indexes; absent ones are skipped.
func interfaceIndexes(names []string) []int {
	var out []int
	if len(names) == 0 {
		all, _ := net.Interfaces()
		for _, ni := range all {
			if ni.Flags&net.FlagLoopback == 0 && ni.Flags&net.FlagMulticast != 0 && ni.Flags&net.FlagUp != 0 {
				out = append(out, ni.Index)
			}
		}
		return out
	}
	for _, n := range names {
		if ni, err := net.InterfaceByName(n); err == nil {
			out = append(out, ni.Index)
		}
	}
	return out
}

// refreshInterfaces keeps the re-multicast interfaces current (VLANs and
// DHCP interfaces come and go).
func refreshInterfaces(ctx context.Context, p *prober.Prober, names []string) {
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			p.SetInterfaces(interfaceIndexes(names))
		}
	}
}

// startXDP loads the discovery fast path and runs it beside resp: the
// program attached to the LAN interfaces, its held map following the
// store, its peer map the remote holders (when forwarding), its captured
// probes answered by resp. Where it cannot run, discovery stays on the
// socket path: that is logged and reported (event 140), never fatal. The
// returned function stops it and detaches; nil when it does not run.
func (s *Service) startXDP(ctx context.Context, st *store.Store, resp *discovery.Responder, forwarding bool) func() {
	mode, err := probexdp.ParseMode(s.cfg.XDP)
	if err != nil || mode == probexdp.Off {
		s.setXDP(nil, "")
		return nil
	}
	if len(s.cfg.Interfaces) == 0 && !s.cfg.XDPAnyInterface {
		s.log.Info("leader: XDP fast path off: as a daemon it attaches only to LAN interfaces named in [[interface]]")
		s.setXDP(nil, "no LAN interface named in [[interface]]: as a daemon, XDP attaches only to named interfaces")
		return nil
	}
	prog, err := probexdp.Load(probexdp.Options{RatePerSource: s.cfg.ProbeRatePerSource, BurstPerSource: s.cfg.ProbeBurstPerSource})
	if err == nil {
		err = prog.SetForward(forwarding)
		if err != nil {
			prog.Close()
		}
	}
	if err != nil {
		s.log.Error("leader: XDP fast path unavailable; discovery uses the socket path", "err", err)
		s.setXDP(nil, err.Error())
		names := s.cfg.Interfaces
		if len(names) == 0 {
			names = []string{"*"}
		}
		for _, name := range names {
			s.xdpNotAvailable(name, err)
		}
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	mgr := probexdp.NewManager(prog, probexdp.ManagerConfig{
		Interfaces: s.cfg.Interfaces, Mode: mode, Logger: s.log, Unavailable: s.xdpNotAvailable,
	})
	wg.Go(func() {
		if err := prog.SyncHeld(ctx, st); err != nil {
			s.log.Warn("leader: XDP held map not kept in sync; every probe goes to the responder", "err", err)
		}
	})
	var peers probexdp.Peers
	if forwarding {
		peers = holdersView{s.holders}
	}
	wg.Go(func() { prog.SyncPeers(ctx, peers) })
	wg.Go(func() {
		err := prog.ReadProbes(ctx, func(p probexdp.Probe) { resp.HandleCaptured(p.PCCRD(), p.Src, p.IfIndex) })
		if err != nil {
			s.log.Error("leader: XDP events unreadable", "err", err)
		}
	})
	wg.Go(func() { mgr.Run(ctx) })
	s.setXDP(mgr, "")
	return func() {
		cancel()
		wg.Wait() // the manager has detached from every interface
		s.setXDP(nil, "")
		prog.Close()
	}
}

func (s *Service) setXDP(m *probexdp.Manager, errText string) {
	s.mu.Lock()
	s.xdp, s.xdpErr = m, errText
	s.mu.Unlock()
}

// holdersView is the remote holders table as the XDP peer map reads it.
type holdersView struct{ t *holders.Table }

func (h holdersView) Watch(fn func(id []byte)) [][]byte { return h.t.Watch(fn) }
func (h holdersView) Lookup(id []byte) bool {
	_, ok := h.t.Lookup(id)
	return ok
}
