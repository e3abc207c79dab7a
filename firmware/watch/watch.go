// Package watch turns what the services report — the store's change feed
// and figures, the hosted cache's counters, the supervisor's states —
// into numbered events (package events), so that an admin learns of
// evictions, a low or full disk, corrupt blocks, pull failures and failing
// services from the event log rather than by reading logs.
package watch

import (
	"context"
	"log/slog"
	"time"

	"github.com/outpost-appliance/outpost/cache/hostedcache"
	"github.com/outpost-appliance/outpost/cache/store"
	"github.com/outpost-appliance/outpost/firmware/events"
	"github.com/outpost-appliance/outpost/firmware/report"
	"github.com/outpost-appliance/outpost/firmware/supervise"
)

// Defaults for Options.
const (
	DefaultInterval        = 5 * time.Second
	DefaultEvictionSummary = 10 * time.Second
)

// Options say what to watch.
type Options struct {
	Events *events.Log
	// Store returns the open store, nil while the hosted cache is not
	// running; its change feed is followed across restarts.
	Store func() *store.Store
	// TagStats, when set, turns growth of the hosted cache's pull-failure
	// counters into PullFailed events (counts per tag). Leave it nil once
	// the hosted cache reports each failure to PullEvents.
	TagStats   func() map[string]hostedcache.TagCounters
	Supervisor interface{ Snapshot() []supervise.Status }
	// Leaders reports the peer leaders (nil: no leader service).
	Leaders func() report.Leaders
	// LowDiskFloor is [cache] low_disk_floor in percent (0: off).
	LowDiskFloor float64
	// Interval is how often figures and states are compared.
	Interval time.Duration
	// EvictionSummary is how long evictions are summed into one event
	// (a limit eviction removes many segments at once).
	EvictionSummary time.Duration
	Logger          *slog.Logger
}

// Service watches until it is stopped.
func Service(opts Options) supervise.Service {
	if opts.Interval <= 0 {
		opts.Interval = DefaultInterval
	}
	if opts.EvictionSummary <= 0 {
		opts.EvictionSummary = DefaultEvictionSummary
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return supervise.Func{ServiceName: "watch", Fn: func(ctx context.Context, ready func()) error {
		w := &watcher{opts: opts, services: map[string]*serviceState{}, evictions: newTally()}
		ready()
		w.run(ctx)
		return nil
	}}
}

type watcher struct {
	opts Options

	services     map[string]*serviceState
	pullFailures map[string]uint64 // last seen, by tag; nil before the first look
	leaderAuth   map[string]uint64 // auth failures last seen, by peer

	store       *store.Store // the store followed
	stopFollow  context.CancelFunc
	followDone  chan struct{}
	storeBase   store.Stats // its figures at the last look
	diskLow     bool
	evictions   *tally
	evictedBase int64 // EvictedBytes when the pending evictions started
}

func (w *watcher) run(ctx context.Context) {
	tick := time.NewTicker(w.opts.Interval)
	defer tick.Stop()
	defer w.unfollow()
	for {
		w.check(ctx)
		select {
		case <-ctx.Done():
			w.flushEvictions(true)
			return
		case <-tick.C:
		}
	}
}

// check compares everything with the last look.
func (w *watcher) check(ctx context.Context) {
	if w.opts.Supervisor != nil {
		w.checkServices(w.opts.Supervisor.Snapshot())
	}
	if w.opts.TagStats != nil {
		w.checkPullFailures(w.opts.TagStats())
	}
	if w.opts.Store != nil {
		w.checkStore(ctx, w.opts.Store())
	}
	if w.opts.Leaders != nil {
		w.checkLeaders(w.opts.Leaders())
	}
}
