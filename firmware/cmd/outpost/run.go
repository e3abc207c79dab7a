package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"github.com/outpost-appliance/outpost/firmware/api"
	"github.com/outpost-appliance/outpost/firmware/appliance"
	"github.com/outpost-appliance/outpost/firmware/config"
	"github.com/outpost-appliance/outpost/firmware/logging"
)

const runUsage = `usage: outpost run [--config FILE] [--data-dir DIR] [--set KEY=VALUE]...

Runs the appliance's services as a daemon on this host until SIGTERM or
SIGINT. The host's network is never changed: [[interface]] entries only
select interfaces. A configuration with errors is reported and replaced by
safe defaults, as on the appliance.

  --config FILE    outpost.toml (default: built-in defaults)
  --data-dir DIR   the store, certificates and the log ring (default /var/lib/outpost)
  --set KEY=VALUE  override one configuration key, e.g. --set cache.max_size=10GiB
`

// stopTimeout bounds the orderly shutdown after a signal.
const stopTimeout = 30 * time.Second

// overrideFlags collects repeated --set flags.
type overrideFlags []config.Override

func (o *overrideFlags) String() string { return fmt.Sprint(*o) }
func (o *overrideFlags) Set(s string) error {
	ov, err := config.ParseOverride(s, config.SourceFlag)
	if err != nil {
		return err
	}
	*o = append(*o, ov)
	return nil
}

// runDaemon is `outpost run`: the services without the system duties.
func runDaemon(ctx context.Context, args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, runUsage) }
	configPath := fs.String("config", "", "")
	dataDir := fs.String("data-dir", "/var/lib/outpost", "")
	var overrides overrideFlags
	fs.Var(&overrides, "set", "")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "outpost run: unexpected argument %q\n\n%s", fs.Arg(0), runUsage)
		return 2
	}

	logs := logging.New(stderr)
	log := logs.Logger
	slog.SetDefault(log)

	source := *configPath
	if source == "" {
		source = "built-in defaults"
	}
	cfg, cfgErr := config.LoadOrSafe(*configPath, overrides...)
	logs.SetLevel(cfg.Log.Level)
	if cfgErr != nil {
		logConfigError(log, cfgErr)
	}

	ringDir := filepath.Join(*dataDir, "log")
	ring, err := logging.OpenRing(ringDir, int64(cfg.Log.RingSize))
	if err != nil {
		log.Error("log ring unavailable; logging to the console only", "err", err)
	} else {
		defer ring.Close()
		if err := logs.AttachRing(ring); err != nil {
			log.Error("log ring", "err", err)
		}
	}
	log.Info("outpost starting", "version", version(), "mode", api.ModeDaemon, "config", source,
		"data_dir", *dataDir, "log_ring", ringDir)
	checkHostInterfaces(log, cfg)

	app, err := appliance.New(appliance.Options{
		Version:      version(),
		Mode:         api.ModeDaemon,
		Config:       cfg,
		ConfigSource: source,
		ConfigErr:    cfgErr,
		DataDir:      *dataDir,
		Logger:       log,
	})
	if err == nil {
		err = app.Start(ctx)
	}
	if err != nil {
		log.Error("cannot start", "err", err)
		return 1
	}
	<-ctx.Done()
	log.Info("signal received; stopping")
	stopCtx, cancel := context.WithTimeout(context.Background(), stopTimeout)
	defer cancel()
	if err := app.Stop(stopCtx); err != nil {
		log.Error("stop", "err", err)
		return 1
	}
	log.Info("outpost stopped")
	return 0
}

// logConfigError reports each problem of a configuration that was
// replaced by safe defaults.
func logConfigError(log *slog.Logger, err error) {
	var cerr *config.Error
	if !errors.As(err, &cerr) {
		log.Error("configuration error; running with safe defaults", "err", err)
		return
	}
	for _, p := range cerr.Problems {
		log.Error("configuration error; running with safe defaults", "problem", p.String())
	}
}

// checkHostInterfaces warns about [[interface]] entries that a daemon does
// not act on: it never changes the host's network.
func checkHostInterfaces(log *slog.Logger, cfg *config.Config) {
	host, err := api.HostInterfaces(nil)
	if err != nil {
		log.Warn("listing interfaces", "err", err)
		return
	}
	have := map[string]bool{}
	for _, i := range host {
		have[i.Name] = true
	}
	for _, ifc := range cfg.Interfaces {
		if !have[ifc.LinkName()] {
			log.Warn("configured interface not found on this host", "interface", ifc.LinkName())
		}
		if ifc.Static() {
			var what []string
			if len(ifc.Address) > 0 {
				what = append(what, "address")
			}
			if ifc.DHCP {
				what = append(what, "dhcp")
			}
			if len(ifc.Gateway) > 0 {
				what = append(what, "gateway")
			}
			if len(ifc.DNS) > 0 {
				what = append(what, "dns")
			}
			log.Warn("running as a daemon: the host's network is not changed; ignoring "+strings.Join(what, ", "),
				"interface", ifc.LinkName())
		}
	}
}
