// Package appliance assembles Outpost's services from a configuration and
// runs them under the supervisor: the part that is the same whether
// outpost is the image's init (PID 1) or a daemon on a host
// (`outpost run`).
package appliance

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/outpost-appliance/outpost/cache/hostedcache"
	"github.com/outpost-appliance/outpost/cache/store"
	"github.com/outpost-appliance/outpost/firmware/api"
	"github.com/outpost-appliance/outpost/firmware/config"
	"github.com/outpost-appliance/outpost/firmware/events"
	"github.com/outpost-appliance/outpost/firmware/supervise"
	leader "github.com/outpost-appliance/outpost/leader/service"
)

// Options describe one run of the appliance.
type Options struct {
	Version string
	Mode    api.Mode
	// Config is the configuration in use; ConfigErr is why it is the safe
	// defaults instead of the file (nil when the file was used).
	Config       *config.Config
	ConfigSource string
	ConfigErr    error
	// Notices are shown in the status (see api.Status).
	Notices []string
	// DataDir holds what must survive a restart: the store (cache.dir is
	// relative to it), certificates, the log ring.
	DataDir string
	// Power reboots or powers off the machine (PID 1 only; nil otherwise).
	Power func(api.PowerAction)
	// System lists services that only the appliance runs (DHCP, NTP, …),
	// started before the others.
	System []Spec
	Logger *slog.Logger
	// TimeSync reports the clock's state for the status (nil: the
	// kernel's, api.KernelTimeSync).
	TimeSync func() api.TimeSync
	// Supervise tunes the supervisor (tests).
	Supervise supervise.Options
	// HistoryInterval is how often the status page's traffic history is
	// sampled (default a minute; tests shorten it).
	HistoryInterval time.Duration
}

// Spec is a service and the names of the services it starts after.
type Spec struct {
	Service supervise.Service
	After   []string
}

// App is a configured set of services under a supervisor.
type App struct {
	Supervisor *supervise.Supervisor
	API        *api.Server
	// Leader is the subnet-leader service (its Stats feed the API).
	Leader *leader.Service
	// Events is the event log (docs/events.md), on the data partition.
	Events  *events.Log
	log     *slog.Logger
	version string
	started time.Time
}

// New builds the services that the configuration asks for.
func New(opts Options) (*App, error) {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	supOpts := opts.Supervise
	supOpts.Logger = log
	sup := supervise.New(supOpts)

	token, err := opts.Config.API.ResolveToken()
	if err != nil {
		// Load checked the file; it went away since. Changes are refused.
		log.Error("API token unreadable; changes over the API are refused", "err", err)
	}
	hosted := hostedCache(opts, log)
	lead := subnetLeader(opts, hosted, log)
	leaderStats := leaderReport{svc: lead, sup: sup, forward: opts.Config.Leader.Forward}
	obs := observe(opts, log, sup, hosted, leaderStats, leaderStats)
	// Discovery without its XDP fast path on an interface is event 140.
	lead.ObserveXDP(func(iface string, err error) {
		obs.events.Log(events.XDPUnavailable, events.Fields{"interface": iface, "error": err.Error()})
	})
	// A peer leader unreachable, then reachable again, is events 130, 131.
	lead.ObservePeers(peerEvents(obs.events))
	preloader := preloadService(opts, hosted, obs.events, log)
	server := api.New(api.Options{
		Thumbprint:   hosted.Thumbprint,
		Version:      opts.Version,
		Mode:         opts.Mode,
		Config:       opts.Config,
		ConfigSource: opts.ConfigSource,
		ConfigErr:    opts.ConfigErr,
		Notices:      opts.Notices,
		Supervisor:   sup,
		Power:        opts.Power,
		Token:        token,
		Logger:       log,

		ReadOnlyAnonymous: opts.Config.API.ReadOnlyAnonymous,
		Report:            obs.report,
		Events:            obs.events,
		History:           obs.history,
		TimeSync:          opts.TimeSync,
		Preload:           preloader,
	})

	specs := append([]Spec(nil), opts.System...)
	specs = append(specs, Spec{Service: server.Service(string(opts.Config.API.Listen))}, Spec{Service: hosted},
		Spec{Service: lead, After: []string{hosted.Name()}}, Spec{Service: preloader, After: []string{hosted.Name()}})
	specs = append(specs, obs.services...)
	for _, s := range specs {
		if err := sup.Add(s.Service, s.After...); err != nil {
			obs.events.Close()
			return nil, fmt.Errorf("appliance: %w", err)
		}
	}
	return &App{Supervisor: sup, API: server, Leader: lead, Events: obs.events, log: log, version: opts.Version}, nil
}

// subnetLeader is the leader service of the configuration ([peer],
// [leader], the LAN interfaces): it answers discovery from the hosted
// cache's store, so it starts after the hosted cache.
func subnetLeader(opts Options, hosted *hostedcache.Service, log *slog.Logger) *leader.Service {
	log = log.With("service", "leader")
	cfg, err := leader.FromConfig(opts.Config, hosted.Store, log)
	// The box's interfaces are all its own: with none named, the XDP
	// fast path takes every one discovery serves. A daemon shares its
	// host, so there it attaches only to named LAN interfaces.
	cfg.XDPAnyInterface = opts.Mode == api.ModeAppliance
	if err != nil {
		// The secret file went away since Load checked it: lead this
		// subnet alone rather than not at all.
		log.Error("leader: peer leaders disabled", "err", err)
		cfg.Peers, cfg.Forward = nil, false
	}
	return leader.New(cfg)
}

// hostedCache is the hosted-cache service of the configuration: the
// segment store ([cache]), the hosted-cache servers ([hosted_cache]) and
// the peer retrieval server ([peer]). The leader and XDP services of their
// issues join beside it.
func hostedCache(opts Options, log *slog.Logger) *hostedcache.Service {
	cfg := opts.Config
	st := store.DefaultOptions(cfg.CacheDir(opts.DataDir))
	st.Profile = store.Profile(cfg.Cache.Profile)
	st.LimitBytes = int64(cfg.Cache.MaxSize)
	st.LimitPercent = float64(cfg.Cache.MaxPercent)
	st.MaxAge = time.Duration(cfg.Cache.MaxAge)
	st.MinFreePercent = float64(cfg.Cache.LowDiskFloor)
	hostname := cfg.HostedCache.Hostname
	if hostname == "" {
		hostname = cfg.Hostname
	}
	return hostedcache.New(hostedcache.Config{
		Store:       st,
		HTTPListen:  string(cfg.HostedCache.HTTPListen),
		HTTPSListen: string(cfg.HostedCache.HTTPSListen),
		PeerListen:  string(cfg.Peer.Listen),
		TLSCertFile: cfg.HostedCache.TLSCert,
		TLSKeyFile:  cfg.HostedCache.TLSKey,
		Hostname:    hostname,
		StateDir:    opts.DataDir,
		MaxUploads:  cfg.HostedCache.MaxUploads,
		Logger:      log.With("service", "hosted-cache"),
	})
}

// Start starts the services and, once all of them are running, logs the
// ready line ("outpost … ready") that the boot test waits for.
func (a *App) Start(ctx context.Context) error {
	a.started = time.Now()
	if err := a.Supervisor.Start(ctx); err != nil {
		return fmt.Errorf("appliance: %w", err)
	}
	a.Events.Log(events.Started, events.Fields{"version": a.version, "services": len(a.Supervisor.Snapshot())})
	go func() {
		select {
		case <-a.Supervisor.Ready():
			a.log.Info("outpost ready", "version", a.version, "services", len(a.Supervisor.Snapshot()),
				"after", time.Since(a.started).Round(time.Millisecond))
		case <-ctx.Done():
		}
	}()
	return nil
}

// Stop stops the services in reverse order within ctx's deadline.
func (a *App) Stop(ctx context.Context) error {
	a.log.Info("stopping services")
	err := a.Supervisor.Stop(ctx)
	// Last, so that what the services logged while stopping is kept.
	a.Events.Log(events.Stopped, events.Fields{"version": a.version})
	if cerr := a.Events.Close(); cerr != nil {
		a.log.Error("closing the event log", "err", cerr)
	}
	return err
}
