// Package pid1 is outpost as the appliance's init: the system duties that
// only PID 1 has — kernel filesystems, modules, entropy, partitions, the
// clock, host name, network, orphan reaping, the hardware watchdog, and an
// orderly power-off or reboot — around the same services `outpost run`
// starts. It never returns: on a fatal error it logs, keeps the console
// alive, and reboots after a delay. The image's QEMU boot test exercises
// it end to end; the parts that can run as a normal process (partitions
// by label, the clock) are tested on their own.
package pid1

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"time"

	"github.com/u-root/u-root/pkg/cmdline"
	"golang.org/x/sys/unix"

	"github.com/outpost-appliance/outpost/firmware/api"
	"github.com/outpost-appliance/outpost/firmware/appliance"
	"github.com/outpost-appliance/outpost/firmware/config"
	"github.com/outpost-appliance/outpost/firmware/logging"
	"github.com/outpost-appliance/outpost/firmware/netconf"
)

// Where the appliance keeps things.
const (
	BootDir    = "/boot"             // OUTPOST-BOOT, read-only
	DataDir    = "/data"             // OUTPOST-DATA, read-write
	ConfigName = "outpost.toml"      // on the boot partition
	BuiltIn    = "/etc/outpost.toml" // fallback shipped in the initramfs
	VolatileDD = "/run/outpost-data" // the data directory when there is no data partition
	ResolvConf = "/etc/resolv.conf"  // written from static DNS and DHCP
	RingDir    = "log"               // under the data directory
	storageMax = 5 * time.Second     // wait for the boot and data partitions
	stopMax    = 30 * time.Second    // orderly stop of the services
	fatalDelay = 60 * time.Second    // console time before a reboot after a fatal error
	clockSave  = 15 * time.Minute    // how often the last known time is saved
	maxDown    = 10 * time.Minute    // a service down longer stops the watchdog petting
	linkWait   = 10 * time.Second    // wait for NICs to appear
)

// IsInit reports whether this process is the system's init: PID 1 started
// as /init (or with no arguments). A container running `outpost run` as
// its PID 1 is not.
func IsInit() bool {
	return os.Getpid() == 1 && (filepath.Base(os.Args[0]) == "init" || len(os.Args) == 1)
}

// boot is the state of one boot.
type boot struct {
	version string
	logs    *logging.Logs
	log     *slog.Logger
	ring    *logging.Ring
	dataDir string
	mounted []string // partitions to unmount at shutdown, in mount order
	notices []string
}

// Main boots the appliance and never returns.
func Main(version string) {
	logs := logging.New(os.Stderr) // the kernel gives init /dev/console
	slog.SetDefault(logs.Logger)
	log.SetFlags(0) // u-root's packages log through the standard logger
	b := &boot{version: version, logs: logs, log: logs.Logger}
	defer func() {
		if r := recover(); r != nil {
			b.fatal(fmt.Errorf("panic: %v", r))
		}
	}()
	b.run()
}

func (b *boot) run() {
	start := time.Now()
	b.log.Info("outpost init starting", "version", b.version)
	mountEarly(b.log)
	// Ctrl-Alt-Del sends SIGINT to init instead of resetting at once.
	if err := unix.Reboot(unix.LINUX_REBOOT_CMD_CAD_OFF); err != nil {
		b.log.Warn("Ctrl-Alt-Del", "err", err)
	}
	// BPF maps count against RLIMIT_MEMLOCK on kernels before 5.11.
	_ = unix.Setrlimit(unix.RLIMIT_MEMLOCK, &unix.Rlimit{Cur: unix.RLIM_INFINITY, Max: unix.RLIM_INFINITY})

	kernelArgs := cmdline.NewCmdLine().AsMap
	loadModules(b.log, kernelArgs["modules_load"])
	b.mountStorage()
	seedEntropy(b.log, filepath.Join(b.dataDir, SeedFile))
	clockPath := filepath.Join(b.dataDir, ClockFile)
	if t, err := RestoreClock(clockPath, buildFloor(), time.Now(), SetSystemClock); err != nil {
		b.log.Warn("restoring the clock", "err", err)
	} else if !t.IsZero() {
		b.log.Info("clock restored from the last known time", "time", t.Format(time.RFC3339))
	}

	cfg, source, cfgErr := b.loadConfig(kernelArgs)
	b.logs.SetLevel(cfg.Log.Level)
	b.openRing(cfg)
	if cfgErr != nil {
		for _, line := range configErrorLines(cfgErr) {
			b.log.Error("CONFIGURATION ERROR: running with safe defaults", "problem", line)
		}
	}
	if err := setHostname(cfg.Hostname); err != nil {
		b.log.Error("hostname", "err", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	system := b.network(ctx, cfg)
	var timeSync func() api.TimeSync // nil: the kernel's state
	if len(cfg.Time.NTP) > 0 {
		ntp := &ntpState{}
		timeSync = ntp.timeSync
		system = append(system, appliance.Spec{Service: ntpService(cfg.Time.NTP, clockPath, b.log, ntp)})
	}

	power := make(chan api.PowerAction, 1)
	app, err := appliance.New(appliance.Options{
		Version:      b.version,
		Mode:         api.ModeAppliance,
		Config:       cfg,
		ConfigSource: source,
		ConfigErr:    cfgErr,
		Notices:      b.notices,
		DataDir:      b.dataDir,
		Power: func(a api.PowerAction) {
			select {
			case power <- a:
			default:
			}
		},
		System:   system,
		Logger:   b.log,
		TimeSync: timeSync,
	})
	if err == nil {
		err = app.Start(ctx)
	}
	if err != nil {
		b.fatal(err)
	}
	b.log.Info("services starting", "boot_seconds", time.Since(start).Seconds())
	go petWatchdog(ctx, b.log, func() bool { return app.Supervisor.Healthy(maxDown) })
	var reaped func(pid int)
	if cfg.Console.Shell {
		if g, err := newBreakGlass(b.log); err != nil {
			b.log.Info("no break-glass shell", "err", err)
		} else {
			reaped = g.reaped
			go g.run(ctx)
			b.log.Info("break-glass shell: press Enter on this console", "device", g.device)
		}
	}

	action := b.wait(power, clockPath, reaped)
	cancel()
	b.shutdown(app, action, clockPath)
}

// mountStorage mounts the boot partition read-only and the data partition
// read-write. Without a data partition the appliance still runs, on a
// volatile directory, and says so in the status.
func (b *boot) mountStorage() {
	wait := storageMax
	if !hasBlockDevices() {
		wait = time.Second
	}
	found := findPartitions(context.Background(), []string{BootLabel, DataLabel}, wait)
	for _, p := range []struct {
		label, dir string
		flags      uintptr
	}{{BootLabel, BootDir, unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC}, {DataLabel, DataDir, unix.MS_NOSUID | unix.MS_NODEV}} {
		fs := found[p.label]
		if fs == nil {
			b.log.Error("partition not found", "label", p.label, "waited", wait)
			continue
		}
		if err := MountFilesystem(fs, p.dir, p.flags); err != nil {
			b.log.Error("partition not mounted", "label", p.label, "err", err)
			continue
		}
		b.mounted = append(b.mounted, p.dir)
		b.log.Info("partition mounted", "label", p.label, "device", fs.Device, "on", p.dir)
	}
	b.dataDir = DataDir
	if !b.isMounted(DataDir) {
		b.dataDir = VolatileDD
		b.notices = append(b.notices, fmt.Sprintf("no %s partition: the cache, logs and clock are kept in memory and lost at reboot", DataLabel))
	}
	if err := os.MkdirAll(b.dataDir, 0o755); err != nil {
		b.log.Error("data directory", "err", err)
	}
}

// findPartitions looks for the labelled filesystems until all are found,
// wait has passed, or a second has passed since the first was found (the
// others would be on the same disk).
func findPartitions(ctx context.Context, labels []string, wait time.Duration) map[string]*Filesystem {
	found := map[string]*Filesystem{}
	deadline := time.Now().Add(wait)
	for {
		for _, l := range labels {
			if found[l] == nil {
				if fs, err := FindByLabel(l); err == nil {
					found[l] = fs
					if soon := time.Now().Add(time.Second); soon.Before(deadline) {
						deadline = soon
					}
				}
			}
		}
		if len(found) == len(labels) || time.Now().After(deadline) {
			return found
		}
		select {
		case <-ctx.Done():
			return found
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (b *boot) isMounted(dir string) bool {
	for _, m := range b.mounted {
		if m == dir {
			return true
		}
	}
	return false
}

// loadConfig reads outpost.toml from the boot partition (else the copy in
// the initramfs, else none), with the kernel command line's overrides. A
// bad file gives the safe defaults and the error.
func (b *boot) loadConfig(kernelArgs map[string]string) (*config.Config, string, error) {
	overrides := config.KernelOverrides(kernelArgs)
	for _, path := range []string{filepath.Join(BootDir, ConfigName), BuiltIn} {
		if _, err := os.Stat(path); err == nil {
			cfg, err := config.LoadOrSafe(path, overrides...)
			return cfg, path, err
		}
	}
	cfg, err := config.LoadOrSafe("", overrides...)
	return cfg, "built-in defaults (no " + ConfigName + " found)", err
}

func (b *boot) openRing(cfg *config.Config) {
	ring, err := logging.OpenRing(filepath.Join(b.dataDir, RingDir), int64(cfg.Log.RingSize))
	if err != nil {
		b.log.Error("log ring unavailable", "err", err)
		return
	}
	b.ring = ring
	if err := b.logs.AttachRing(ring); err != nil {
		b.log.Error("log ring", "err", err)
	}
}

// network brings up loopback and the configured interfaces (or DHCP on the
// first Ethernet interface when none is configured) and returns the DHCP
// services to supervise.
func (b *boot) network(ctx context.Context, cfg *config.Config) []appliance.Spec {
	if err := netconf.Loopback(); err != nil {
		b.log.Error("loopback", "err", err)
	}
	ifaces := cfg.Interfaces
	if len(ifaces) == 0 {
		name, err := netconf.FirstEthernet(ctx, linkWait)
		if err != nil {
			b.log.Error("no network interface to configure", "err", err)
			b.notices = append(b.notices, "no Ethernet interface found: the box is not on the network")
			return nil
		}
		b.log.Info("no [[interface]] configured: DHCP on the first Ethernet interface", "interface", name)
		ifaces = []config.Interface{{Name: name, DHCP: true, Role: config.RoleLAN}}
	}
	opts := netconf.Options{LinkTimeout: linkWait, Resolv: netconf.NewResolv(ResolvConf), Logger: b.log}
	if err := netconf.Apply(ctx, ifaces, opts); err != nil {
		b.notices = append(b.notices, err.Error())
	}
	var specs []appliance.Spec
	for _, ifc := range ifaces {
		if ifc.DHCP {
			specs = append(specs, appliance.Spec{Service: &netconf.DHCP{Interface: ifc.LinkName(), Hostname: cfg.Hostname, Options: opts}})
		}
	}
	return specs
}

// wait serves until a signal or an API request asks to stop, reaping
// orphans (reporting each to reaped, if set) and saving the clock
// meanwhile. SIGTERM powers off; SIGINT
// (Ctrl-Alt-Del) reboots.
func (b *boot) wait(power <-chan api.PowerAction, clockPath string, reaped func(pid int)) api.PowerAction {
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, unix.SIGTERM, unix.SIGINT, unix.SIGCHLD)
	tick := time.NewTicker(clockSave)
	defer tick.Stop()
	for {
		select {
		case a := <-power:
			return a
		case s := <-sigs:
			switch s {
			case unix.SIGCHLD:
				reap(reaped)
			case unix.SIGTERM:
				b.log.Info("SIGTERM: powering off")
				return api.PowerOff
			case unix.SIGINT:
				b.log.Info("SIGINT (Ctrl-Alt-Del): rebooting")
				return api.Reboot
			}
		case <-tick.C:
			if err := SaveClock(clockPath, time.Now()); err != nil {
				b.log.Warn("saving the clock", "err", err)
			}
		}
	}
}

// shutdown stops the services in reverse order, saves the clock and the
// entropy seed, syncs and unmounts, then powers off or reboots.
func (b *boot) shutdown(app *appliance.App, action api.PowerAction, clockPath string) {
	ctx, cancel := context.WithTimeout(context.Background(), stopMax)
	if err := app.Stop(ctx); err != nil {
		b.log.Error("stopping services", "err", err)
	}
	cancel()
	if err := SaveClock(clockPath, time.Now()); err != nil {
		b.log.Warn("saving the clock", "err", err)
	}
	if err := saveSeed(filepath.Join(b.dataDir, SeedFile)); err != nil {
		b.log.Warn("saving the entropy seed", "err", err)
	}
	b.log.Info("unmounting and " + map[api.PowerAction]string{api.Reboot: "rebooting", api.PowerOff: "powering off"}[action])
	b.closeStorage()
	cmd := unix.LINUX_REBOOT_CMD_POWER_OFF
	if action == api.Reboot {
		cmd = unix.LINUX_REBOOT_CMD_RESTART
	}
	if err := unix.Reboot(cmd); err != nil {
		b.fatal(fmt.Errorf("%s: %w", action, err))
	}
	select {} // the kernel is taking the machine down
}

// closeStorage closes the log ring and unmounts the partitions; one that
// is still busy is remounted read-only so its filesystem is clean.
func (b *boot) closeStorage() {
	if b.ring != nil {
		b.ring.Close()
		b.ring = nil
	}
	unix.Sync()
	for i := len(b.mounted) - 1; i >= 0; i-- {
		dir := b.mounted[i]
		if err := unix.Unmount(dir, 0); err != nil {
			b.log.Warn("unmount; remounting read-only", "dir", dir, "err", err)
			if err := unix.Mount("", dir, "", unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
				b.log.Error("remount read-only", "dir", dir, "err", err)
			}
		}
	}
	b.mounted = nil
	unix.Sync()
}

// fatal is the end of a boot that cannot go on: log, leave the console
// usable for a while (the log stays on it; the kernel's console keeps
// working because init does not exit), then reboot. It never returns.
func (b *boot) fatal(err error) {
	b.log.Error("FATAL: outpost cannot continue; rebooting", "err", err, "in", fatalDelay)
	time.Sleep(fatalDelay)
	b.closeStorage()
	if rerr := unix.Reboot(unix.LINUX_REBOOT_CMD_RESTART); rerr != nil {
		b.log.Error("reboot failed; halting here", "err", rerr)
	}
	select {}
}

// buildFloor is the earliest plausible time: when this binary was built
// (its modification time), so a box that never synced does not start in
// 1970. Images with fixed timestamps set it to the commit time.
func buildFloor() time.Time {
	exe, err := os.Executable()
	if err != nil {
		return time.Time{}
	}
	st, err := os.Stat(exe)
	if err != nil || st.ModTime().Year() < 2024 {
		return time.Time{}
	}
	return st.ModTime()
}

func configErrorLines(err error) []string {
	var cerr *config.Error
	if !errors.As(err, &cerr) {
		return []string{err.Error()}
	}
	lines := make([]string, len(cerr.Problems))
	for i, p := range cerr.Problems {
		lines[i] = p.String()
	}
	return lines
}
