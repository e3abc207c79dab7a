package appliance

import (
	"errors"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/outpost-appliance/outpost/cache/hostedcache"
	"github.com/outpost-appliance/outpost/firmware/config"
	"github.com/outpost-appliance/outpost/firmware/events"
	"github.com/outpost-appliance/outpost/firmware/history"
	"github.com/outpost-appliance/outpost/firmware/report"
	"github.com/outpost-appliance/outpost/firmware/supervise"
	"github.com/outpost-appliance/outpost/firmware/watch"
)

// EventsDir is where the event log is kept, under the data directory.
const EventsDir = "events"

// observation is what the management API shows of the services: the
// event log, the figures and the traffic history, and the services that
// keep the last two current.
type observation struct {
	events   *events.Log
	report   *report.Reporter
	history  *history.History
	services []Spec
}

// observe sets up the event log on the data partition (in memory if it
// cannot be opened there: events must never stop the box) and the
// reports of the hosted cache and the leader.
func observe(opts Options, log *slog.Logger, sup interface{ Snapshot() []supervise.Status },
	hosted *hostedcache.Service, leaders report.LeaderStats, discovery report.DiscoveryStats) *observation {
	evlog, err := events.Open(events.Options{Dir: filepath.Join(opts.DataDir, EventsDir), Logger: log})
	if err != nil {
		log.Error("event log unavailable on the data partition; events are kept in memory only", "err", err)
		evlog, _ = events.Open(events.Options{Logger: log}) // in memory: cannot fail
	}
	if opts.ConfigErr != nil {
		logConfigError(evlog, opts.ConfigSource, opts.ConfigErr)
	}
	started := time.Now()
	floor := float64(opts.Config.Cache.LowDiskFloor)
	reporter := report.New(report.Sources{
		Store: func() report.SegmentStore {
			if st := hosted.Store(); st != nil {
				return st
			}
			return nil // not a typed nil
		},
		TagStats:      hosted.Stats,
		Leaders:       leaders,
		Discovery:     discovery,
		CountersSince: started,
		LowDiskFloor:  floor,
	})
	// Each failed pull is an event (14, or 6401 when the data failed its hash).
	hosted.ObservePulls(watch.PullEvents{Events: evlog})
	// Offers not taken are events too (11, 6402).
	hosted.ObserveOffers(watch.OfferEvents{Events: evlog})
	hist := history.New(history.DefaultSize, opts.HistoryInterval)
	return &observation{
		events:  evlog,
		report:  reporter,
		history: hist,
		services: []Spec{
			{Service: hist.Service(func() history.Sample { return trafficSample(reporter) })},
			{Service: watch.Service(watch.Options{
				Events: evlog, Store: hosted.Store, Supervisor: sup, LowDiskFloor: floor, Logger: log,
				Leaders: reporter.Leaders,
			})},
		},
	}
}

// trafficSample is the history's sample: what was served (from the cache
// and relayed from other subnets) and what of it came from the cache.
func trafficSample(r *report.Reporter) history.Sample {
	c := r.Cache()
	relayed := r.Leaders().Totals.RelayBytes
	return history.Sample{
		Time: time.Now().UTC(), BytesServed: c.BytesServed + relayed, WANBytesSaved: c.WANBytesSaved,
		BytesPulled: c.BytesPulled, Hits: c.Hits, Misses: c.Misses, CacheBytes: c.Bytes, CacheFill: c.Fill,
	}
}

// logConfigError is event 100: the box runs in safe mode.
func logConfigError(evlog *events.Log, source string, err error) {
	fields := events.Fields{"source": source, "problems": 1, "first": err.Error()}
	var cerr *config.Error
	if errors.As(err, &cerr) && len(cerr.Problems) > 0 {
		fields["problems"], fields["first"] = len(cerr.Problems), cerr.Problems[0].String()
	}
	evlog.Log(events.ConfigError, fields)
}
