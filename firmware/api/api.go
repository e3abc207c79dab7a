// Package api is Outpost's management API, served on [api] listen (":9000"
// by default) under /api/v1/. Today it answers GET /api/v1/status (version,
// uptime, hostname, interfaces and addresses, services and their
// supervisor state, configuration errors and safe mode) and POST
// /api/v1/reboot and /api/v1/poweroff; the other endpoints, metrics and
// the status page of the management-API issue register on the same Server
// with Handle.
package api

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/outpost-appliance/outpost/firmware/config"
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
	Token  config.Secret
	Logger *slog.Logger
}

// Server is the API's HTTP handler.
type Server struct {
	opts Options
	mux  *http.ServeMux
	log  *slog.Logger
}

// New returns a server with the status and power endpoints registered.
func New(opts Options) *Server {
	if opts.Interfaces == nil {
		cfg := opts.Config
		opts.Interfaces = func() ([]Interface, error) { return HostInterfaces(cfg) }
	}
	if opts.Started.IsZero() {
		opts.Started = time.Now()
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	s := &Server{opts: opts, mux: http.NewServeMux(), log: log.With("service", "api")}
	s.mux.HandleFunc("GET "+Prefix+"status", s.handleStatus)
	s.mux.Handle("POST "+Prefix+"reboot", s.RequireToken(s.powerHandler(Reboot)))
	s.mux.Handle("POST "+Prefix+"poweroff", s.RequireToken(s.powerHandler(PowerOff)))
	return s
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
		Started:       s.opts.Started,
		UptimeSeconds: time.Since(s.opts.Started).Seconds(),
		Interfaces:    []Interface{},
		Services:      []supervise.Status{},
		Config:        ConfigStatus{Source: s.opts.ConfigSource},
		Notices:       s.opts.Notices,
	}
	if s.opts.Thumbprint != nil {
		st.TLSThumbprint = s.opts.Thumbprint()
	}
	if ifaces, err := s.opts.Interfaces(); err == nil {
		st.Interfaces = ifaces
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
		writeJSON(w, http.StatusAccepted, map[string]string{"action": string(action), "state": "stopping services"})
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		// After the reply: the action stops this server too.
		go s.opts.Power(action)
	})
}

// RequireToken lets a request through only with "Authorization: Bearer
// <token>" matching the configured token (compared in constant time).
func (s *Server) RequireToken(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		want := s.opts.Token.Reveal()
		if want == "" {
			writeError(w, http.StatusForbidden, "no API token is configured ([api] token or token_file), so changes over the API are refused")
			return
		}
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
			s.log.Warn("API call refused: bad or missing token", "path", r.URL.Path, "remote", r.RemoteAddr)
			w.Header().Set("WWW-Authenticate", `Bearer realm="outpost"`)
			writeError(w, http.StatusUnauthorized, "a valid bearer token is required")
			return
		}
		next.ServeHTTP(w, r)
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
