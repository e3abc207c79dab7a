package hostedcache

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/outpost-appliance/outpost/cache/retrieval"
	"github.com/outpost-appliance/outpost/cache/store"
)

// Config is what the hosted-cache service needs; the appliance fills it
// from outpost.toml ([cache], [hosted_cache], [peer]).
type Config struct {
	Store store.Options
	// Listen addresses; "" switches a server off.
	HTTPListen  string // PCHC v2.0 and MS-PCCRR (default :1339)
	HTTPSListen string // PCHC v1.0 and MS-PCCRR over TLS (default :443)
	PeerListen  string // MS-PCCRR for clients that found us by discovery (default :1337)
	// TLSCertFile and TLSKeyFile name a PEM certificate and key; when
	// empty a self-signed certificate for Hostname is made and kept in
	// StateDir.
	TLSCertFile, TLSKeyFile string
	Hostname                string
	StateDir                string
	// MaxUploads bounds concurrent retrieval exchanges (default 1024).
	MaxUploads int
	Logger     *slog.Logger
}

// Service runs the hosted cache: the segment store, the puller and the
// HTTP, HTTPS and peer servers. It is a supervised service (Name, Run).
type Service struct {
	cfg   Config
	stats Stats
	// pullObservers are told of every pull besides the statistics (the
	// appliance's event log).
	pullObservers []PullObserver
	offerObserver OfferObserver

	mu    sync.Mutex
	store *store.Store
	cert  *Certificate
	addrs map[string]net.Addr
}

// New returns a hosted-cache service for cfg.
func New(cfg Config) *Service { return &Service{cfg: cfg} }

// ObservePulls adds an observer of pulls (each success and failure, with
// the error); call it before Run.
func (s *Service) ObservePulls(o PullObserver) { s.pullObservers = append(s.pullObservers, o) }

// ObserveOffers sets the observer of offers not taken; call it before Run.
func (s *Service) ObserveOffers(o OfferObserver) { s.offerObserver = o }

// Name implements the supervisor's Service.
func (s *Service) Name() string { return "hosted-cache" }

// Stats returns the per-content-tag counters (kept across restarts of the
// service).
func (s *Service) Stats() map[string]TagCounters { return s.stats.Snapshot() }

// Store returns the open store, or nil while the service is not running.
func (s *Service) Store() *store.Store {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.store
}

// Thumbprint returns the SHA-1 thumbprint of the HTTPS certificate, or ""
// before it is loaded.
func (s *Service) Thumbprint() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cert == nil {
		return ""
	}
	return s.cert.Thumbprint
}

// Addr returns the address a server listens on ("http", "https", "peer"),
// or nil.
func (s *Service) Addr(server string) net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addrs[server]
}

func (s *Service) logger() *slog.Logger {
	if s.cfg.Logger == nil {
		return slog.Default()
	}
	return s.cfg.Logger
}

// Run opens the store and serves until ctx ends.
func (s *Service) Run(ctx context.Context, ready func()) error {
	log := s.logger()
	opts := s.cfg.Store
	if opts.Logger == nil {
		opts.Logger = log
	}
	st, err := store.Open(ctx, opts)
	if err != nil {
		return fmt.Errorf("hosted cache: %w", err)
	}
	defer st.Close()

	var cert *Certificate
	if s.cfg.HTTPSListen != "" {
		if cert, err = s.certificate(); err != nil {
			return err
		}
		log.Info("hosted cache HTTPS certificate", "thumbprint", cert.Thumbprint, "generated", cert.Generated,
			"hint", "Windows 7 clients must trust this certificate (netsh branchcache / certificate store)")
	}

	pullCtx, stopPulling := context.WithCancel(ctx)
	defer stopPulling()
	cache := &Cache{Store: st, Stats: &s.stats, Observer: s.offerObserver, Logger: log}
	cache.Puller = &Puller{Client: &retrieval.Client{}, Sink: cache, Observer: append(pullObservers{&s.stats}, s.pullObservers...), Logger: log}
	blocks := &retrieval.Server{Source: cache.Source(), MaxActive: s.cfg.MaxUploads, Observer: &s.stats, Logger: log}
	hosted := Handler(&OfferServer{Offers: cache, Observer: s.offerObserver, Logger: log}, blocks)

	servers := []struct {
		name, addr string
		handler    http.Handler
		tls        *tls.Config
	}{
		{"http", s.cfg.HTTPListen, hosted, nil},
		{"https", s.cfg.HTTPSListen, hosted, tlsConfig(cert)},
		{"peer", s.cfg.PeerListen, retrievalOnly(blocks), nil},
	}
	errs := make(chan error, len(servers))
	var running []portServer
	addrs := map[string]net.Addr{}
	for _, srv := range servers {
		if srv.addr == "" {
			continue
		}
		ln, err := net.Listen("tcp", srv.addr)
		if err != nil {
			shutdown(running)
			return fmt.Errorf("hosted cache: %s server: %w", srv.name, err)
		}
		var hs portServer = &http.Server{Handler: srv.handler, ReadHeaderTimeout: 15 * time.Second, IdleTimeout: idleTimeout,
			ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug)}
		if srv.tls != nil {
			ln = tls.NewListener(ln, srv.tls)
		} else {
			// Plain-HTTP retrieval ports take MS-PCCRR exchanges in a loop
			// of their own, and hand everything else to net/http.
			hs = &retrieval.HTTP1Server{Retrieval: blocks, Fallback: hs.(*http.Server), IdleTimeout: idleTimeout, Logger: log}
		}
		running = append(running, hs)
		addrs[srv.name] = ln.Addr()
		log.Info("hosted cache listening", "server", srv.name, "addr", ln.Addr())
		go func() {
			if err := hs.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				errs <- fmt.Errorf("hosted cache: %s server: %w", srv.name, err)
			}
		}()
	}
	s.mu.Lock()
	s.store, s.cert, s.addrs = st, cert, addrs
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.store, s.addrs = nil, nil
		s.mu.Unlock()
	}()

	var pulling sync.WaitGroup
	pulling.Go(func() { cache.Puller.Run(pullCtx) })
	ready()
	select {
	case <-ctx.Done():
		err = nil
	case err = <-errs:
	}
	shutdown(running)
	stopPulling()
	pulling.Wait()
	return err
}

func (s *Service) certificate() (*Certificate, error) {
	if s.cfg.TLSCertFile != "" {
		return LoadCertificate(s.cfg.TLSCertFile, s.cfg.TLSKeyFile)
	}
	hostname := s.cfg.Hostname
	if hostname == "" {
		hostname = "outpost"
	}
	return LoadOrCreateSelfSigned(s.cfg.StateDir, hostname, localAddresses(), time.Now())
}

// tlsConfig accepts what Windows 7's schannel speaks: TLS 1.0 and later
// (TLS 1.2 is off by default on many Windows 7 installs).
func tlsConfig(cert *Certificate) *tls.Config {
	if cert == nil {
		return nil
	}
	return &tls.Config{Certificates: []tls.Certificate{cert.TLS}, MinVersion: tls.VersionTLS10}
}

// retrievalOnly serves MS-PCCRR on its path and nothing else (the peer
// port: discovery hands out only this).
func retrievalOnly(blocks *retrieval.Server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !retrieval.MatchPath(r.URL.Path) {
			http.NotFound(w, r)
			return
		}
		blocks.ServeHTTP(w, r)
	})
}

// idleTimeout closes a keep-alive connection left without a request.
const idleTimeout = 2 * time.Minute

// portServer is an HTTP server on one of the ports: net/http's, or the
// retrieval loop in front of one.
type portServer interface {
	Serve(net.Listener) error
	Shutdown(context.Context) error
	Close() error
}

// shutdown stops servers, giving exchanges in flight a moment to finish.
func shutdown(servers []portServer) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, hs := range servers {
		if hs.Shutdown(ctx) != nil {
			hs.Close()
		}
	}
}

// localAddresses are the host's unicast addresses, for the self-signed
// certificate's names.
func localAddresses() []net.IP {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	var ips []net.IP
	for _, a := range addrs {
		if ipnet, ok := a.(*net.IPNet); ok && !ipnet.IP.IsLinkLocalUnicast() {
			ips = append(ips, ipnet.IP)
		}
	}
	return ips
}
