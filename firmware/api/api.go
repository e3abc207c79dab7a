// Package api is Outpost's management API, served on [api] listen (":9000"
// by default): JSON under /api/v1/ (status, cache, segments, leaders,
// discovery, events, config, history; purge, flush, reboot, power-off),
// Prometheus metrics on /metrics and the status page on /. Calls that
// change something need the bearer token; reads are anonymous only when
// [api] read_only_anonymous says so. docs/management-api.md describes
// every endpoint.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/outpost-appliance/outpost/cache/preload"
	"github.com/outpost-appliance/outpost/firmware/config"
	"github.com/outpost-appliance/outpost/firmware/events"
	"github.com/outpost-appliance/outpost/firmware/history"
	"github.com/outpost-appliance/outpost/firmware/metrics"
	"github.com/outpost-appliance/outpost/firmware/report"
	"github.com/outpost-appliance/outpost/firmware/statuspage"
	"github.com/outpost-appliance/outpost/firmware/supervise"
)

// Prefix is where the versioned API lives.
const Prefix = "/api/v1/"

// Supervisor is what the API reads of the supervisor.
type Supervisor interface {
	Snapshot() []supervise.Status
	Ready() <-chan struct{}
}

// PowerAction is what POST reboot / poweroff ask for.
type PowerAction string

// Power actions.
const (
	Reboot   PowerAction = "reboot"
	PowerOff PowerAction = "poweroff"
)

// Options are what the server reports and acts on.
type Options struct {
	Version string
	Mode    Mode
	Started time.Time
	// Config is the configuration in use, ConfigSource where it came from
	// and ConfigErr why the box fell back to safe defaults (nil if it did
	// not).
	Config       *config.Config
	ConfigSource string
	ConfigErr    error
	Supervisor   Supervisor
	Notices      []string
	// Interfaces lists the interfaces (default: HostInterfaces).
	Interfaces func() ([]Interface, error)
	// Power carries out a reboot or power-off after the reply is sent; nil
	// where outpost does not own the machine (daemon mode).
	Power func(PowerAction)
	// Thumbprint reports the hosted cache's TLS certificate thumbprint
	// ("" before the hosted cache has loaded it); nil if there is none.
	Thumbprint func() string
	// Token authorizes calls that change something; unset refuses them.
	Token config.Secret
	// ReadOnlyAnonymous lets reads through without the token.
	ReadOnlyAnonymous bool
	// Report gives the cache, segment, leader and discovery figures (nil:
	// none of those services runs).
	Report *report.Reporter
	// Events is the event log (nil: none; API events go nowhere).
	Events *events.Log
	// History is the traffic history for the status page's chart.
	History *history.History
	// Board names the hardware (default: HostBoard).
	Board string
	// Preload is the preload service (pre-staging and inject); nil: its
	// endpoints answer that it is not running.
	Preload *preload.Service
	// TimeSync reports the clock's state (default: KernelTimeSync).
	TimeSync func() TimeSync
	// Now is the clock of the failed-login limiter (tests).
	Now    func() time.Time
	Logger *slog.Logger
}

// Server is the API's HTTP handler.
type Server struct {
	opts   Options
	mux    *http.ServeMux
	log    *slog.Logger
	report *report.Reporter
	logins *loginLimiter
}

// New returns a server with every endpoint registered.
func New(opts Options) *Server {
	if opts.Interfaces == nil {
		cfg := opts.Config
		opts.Interfaces = func() ([]Interface, error) { return HostInterfaces(cfg) }
	}
	if opts.Started.IsZero() {
		opts.Started = time.Now()
	}
	if opts.Report == nil {
		opts.Report = report.New(report.Sources{CountersSince: opts.Started})
	}
	if opts.History == nil {
		opts.History = history.New(1, 0)
	}
	if opts.Board == "" {
		opts.Board = HostBoard()
	}
	if opts.TimeSync == nil {
		opts.TimeSync = KernelTimeSync
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	s := &Server{opts: opts, mux: http.NewServeMux(), log: log.With("service", "api"), report: opts.Report,
		logins: newLoginLimiter(opts.Now)}

	read := func(pattern string, h http.HandlerFunc) { s.mux.Handle(pattern, s.RequireRead(h)) }
	change := func(pattern string, h http.HandlerFunc) { s.mux.Handle(pattern, s.RequireToken(h)) }
	read("GET "+Prefix+"status", s.handleStatus)
	read("GET "+Prefix+"cache", s.handleCache)
	change("POST "+Prefix+"cache/flush", s.handleFlush)
	read("GET "+Prefix+"segments", s.handleSegments)
	read("GET "+Prefix+"segments/top", s.handleTopSegments)
	read("GET "+Prefix+"segments/{id}", s.handleSegment)
	change("DELETE "+Prefix+"segments/{id}", s.handleDeleteSegment)
	read("GET "+Prefix+"leaders", s.handleLeaders)
	read("GET "+Prefix+"discovery", s.handleDiscovery)
	read("GET "+Prefix+"events", s.handleEvents)
	read("GET "+Prefix+"events/catalog", s.handleEventCatalog)
	read("GET "+Prefix+"config", s.handleConfig)
	read("GET "+Prefix+"history", s.handleHistory)
	change("POST "+Prefix+"reboot", s.powerHandler(Reboot).ServeHTTP)
	change("POST "+Prefix+"poweroff", s.powerHandler(PowerOff).ServeHTTP)
	s.registerPreload(read, change)
	s.mux.Handle("GET /metrics", s.RequireRead(metrics.Handler(metrics.NewRegistry(metrics.Sources{
		Version: opts.Version, Mode: string(opts.Mode), SafeMode: opts.ConfigErr != nil,
		Report: opts.Report, Supervisor: opts.Supervisor, Events: eventCounts(opts.Events),
		Preload: preloadStats(opts.Preload),
	}), log)))
	// The page holds no data (it reads the API, with the token when reads
	// need one), so it is served to anyone.
	s.mux.Handle("GET /{$}", statuspage.Handler())
	return s
}

// eventCounts avoids a typed nil in the metrics' interface.
func eventCounts(l *events.Log) interface{ Counts() map[events.ID]uint64 } {
	if l == nil {
		return nil
	}
	return l
}

// Handle registers another endpoint (net/http ServeMux patterns).
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// ServeHTTP serves the API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Status gathers the current status.
func (s *Server) Status() Status {
	host, _ := os.Hostname()
	st := Status{
		Version:       s.opts.Version,
		Mode:          s.opts.Mode,
		Hostname:      host,
		Board:         s.opts.Board,
		Time:          s.opts.TimeSync(),
		Started:       s.opts.Started,
		UptimeSeconds: time.Since(s.opts.Started).Seconds(),
		Interfaces:    []Interface{},
		Services:      []supervise.Status{},
		Config:        ConfigStatus{Source: s.opts.ConfigSource},
		Notices:       s.opts.Notices,
		Memory:        readMemory(),
	}
	if s.opts.Thumbprint != nil {
		st.TLSThumbprint = s.opts.Thumbprint()
	}
	if ifaces, err := s.opts.Interfaces(); err == nil {
		st.Interfaces = withXDPModes(ifaces, s.report.Discovery())
	} else {
		s.log.Warn("listing interfaces", "err", err)
	}
	if sup := s.opts.Supervisor; sup != nil {
		st.Services = sup.Snapshot()
		select {
		case <-sup.Ready():
			st.Ready = true
		default:
		}
	}
	if err := s.opts.ConfigErr; err != nil {
		st.Config.SafeMode = true
		var cerr *config.Error
		if errors.As(err, &cerr) {
			st.Config.Errors = cerr.Problems
		} else {
			st.Config.Errors = []config.Problem{{Source: s.opts.ConfigSource, Message: err.Error()}}
		}
	}
	return st
}

func (s *Server) handleStatus(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.Status())
}

func (s *Server) powerHandler(action PowerAction) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.opts.Power == nil {
			writeError(w, http.StatusNotImplemented, fmt.Sprintf("%s is only available on the appliance; outpost runs here as a daemon", action))
			return
		}
		s.log.Warn("power action requested over the API", "action", action, "remote", r.RemoteAddr)
		s.opts.Events.Log(events.PowerRequested, events.Fields{"action": string(action), "remote": r.RemoteAddr})
		writeJSON(w, http.StatusAccepted, map[string]string{"action": string(action), "state": "stopping services"})
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		// After the reply: the action stops this server too.
		go s.opts.Power(action)
	})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v) // the client went away; nothing to do
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

// Service runs the server on listen under the supervisor.
func (s *Server) Service(listen string) supervise.Service {
	return supervise.Func{ServiceName: "api", Fn: func(ctx context.Context, ready func()) error {
		var lc net.ListenConfig
		ln, err := lc.Listen(ctx, "tcp", listen)
		if err != nil {
			return fmt.Errorf("api: %w", err)
		}
		srv := &http.Server{
			Handler:           s,
			ReadHeaderTimeout: 10 * time.Second,
			BaseContext:       func(net.Listener) context.Context { return ctx },
			ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		}
		s.log.Info("API listening", "addr", ln.Addr().String())
		ready()
		errc := make(chan error, 1)
		go func() { errc <- srv.Serve(ln) }()
		select {
		case err := <-errc:
			return fmt.Errorf("api: %w", err)
		case <-ctx.Done():
		}
		shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(shutdownCtx); err != nil {
			srv.Close()
		}
		return nil
	}}
}
