package pid1

import (
	"context"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/u-root/u-root/pkg/ntpdate"
	"github.com/u-root/u-root/pkg/watchdog"

	"github.com/outpost-appliance/outpost/firmware/api"
	"github.com/outpost-appliance/outpost/firmware/supervise"
)

// NTP timing: retry soon while the clock has never been synced, then
// resync hourly (and save the time for the next boot each time).
const (
	ntpRetry    = time.Minute
	ntpInterval = time.Hour
)

// ntpService keeps the clock synced with u-root's ntpdate. It is ready at
// once: an unreachable NTP server (a closed firewall) must not hold the
// appliance back; failures are logged, and the clock runs from the last
// known time meanwhile.
func ntpService(servers []string, clockPath string, log *slog.Logger, state *ntpState) supervise.Service {
	return supervise.Func{ServiceName: "ntp", Fn: func(ctx context.Context, ready func()) error {
		ready()
		_, rtcErr := os.Stat("/dev/rtc0")
		wait := time.Duration(0)
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(wait):
			}
			server, offset, err := ntpdate.SetTime(servers, "", "", rtcErr == nil)
			if err != nil {
				log.Warn("NTP sync failed", "servers", servers, "err", err)
				wait = ntpRetry
				continue
			}
			log.Info("clock synced by NTP", "server", server, "offset_seconds", offset)
			state.synced(server, time.Now())
			if err := SaveClock(clockPath, time.Now()); err != nil {
				log.Warn("saving the clock", "err", err)
			}
			wait = ntpInterval
		}
	}}
}

// ntpState is what the status shows of NTP: ntpdate sets the clock with
// settimeofday, so the kernel's own sync flag never says it.
type ntpState struct {
	mu     sync.Mutex
	server string
	last   time.Time
}

func (n *ntpState) synced(server string, at time.Time) {
	n.mu.Lock()
	n.server, n.last = server, at
	n.mu.Unlock()
}

// timeSync reports the clock synced while the last NTP sync is recent
// (two resync intervals: one failed resync is not yet a problem).
func (n *ntpState) timeSync() api.TimeSync {
	n.mu.Lock()
	defer n.mu.Unlock()
	now := time.Now()
	ts := api.TimeSync{Now: now.UTC(), Source: "ntp (never synced yet)"}
	if !n.last.IsZero() {
		ts.Source = "ntp " + n.server + ", last synced " + n.last.UTC().Format(time.RFC3339)
		ts.Synced = now.Sub(n.last) < 2*ntpInterval
	}
	return ts
}

// petWatchdog keeps the hardware watchdog (/dev/watchdog) from resetting
// the board while healthy() holds; when it stops holding (a service has
// been failing to start for too long), the watchdog resets the board. It
// returns when ctx ends, disarming the watchdog (a clean shutdown follows).
func petWatchdog(ctx context.Context, log *slog.Logger, healthy func() bool) {
	wd, err := watchdog.Open(watchdog.Dev)
	if err != nil {
		log.Info("no hardware watchdog", "err", err)
		return
	}
	timeout, err := wd.Timeout()
	if err != nil || timeout <= 0 {
		timeout = 30 * time.Second
	}
	log.Info("hardware watchdog armed", "timeout", timeout)
	tick := time.NewTicker(max(timeout/3, time.Second))
	defer tick.Stop()
	warned := false
	for {
		select {
		case <-ctx.Done():
			if err := wd.MagicClose(); err != nil {
				log.Warn("disarming the watchdog", "err", err)
			}
			return
		case <-tick.C:
		}
		if !healthy() {
			if !warned {
				log.Error("services unhealthy: no longer petting the watchdog; the board will reset", "timeout", timeout)
				warned = true
			}
			continue
		}
		warned = false
		if err := wd.KeepAlive(); err != nil {
			log.Warn("petting the watchdog", "err", err)
		}
	}
}
