// Package report gathers the figures Outpost shows about itself — the
// cache and its segments, the peer leaders, discovery — into JSON-ready
// snapshots from the services' own counters. The management API, the
// metrics and the status page's history all read these, so they always
// agree.
package report

import (
	"context"
	"sync"
	"time"

	"github.com/outpost-appliance/outpost/cache/hostedcache"
	"github.com/outpost-appliance/outpost/cache/store"
)

// SegmentStore is what the reports read and change of the segment store
// (*store.Store).
type SegmentStore interface {
	Stats() store.Stats
	ListSegments(ctx context.Context, after []byte, limit int) ([]store.SegmentInfo, []byte, error)
	Segment(ctx context.Context, segmentID []byte) (store.SegmentInfo, error)
	DeleteSegment(ctx context.Context, segmentID []byte) error
	Flush(ctx context.Context) error
}

// LeaderStats is what the leader service (issue 5) reports: its peers and
// their counters. It plugs into Sources when the service exists.
type LeaderStats interface {
	Leaders() Leaders
}

// DiscoveryStats is what the discovery responder and its XDP fast path
// (issues 5 and 10) report, per interface.
type DiscoveryStats interface {
	Discovery() Discovery
}

// Sources are where the figures come from. Nil members are services that
// do not exist (yet): their reports say "not running".
type Sources struct {
	// Store returns the open store, or nil while the hosted cache is not
	// running.
	Store func() SegmentStore
	// TagStats returns the hosted cache's counters by content tag.
	TagStats  func() map[string]hostedcache.TagCounters
	Leaders   LeaderStats
	Discovery DiscoveryStats
	// CountersSince is when the counters started (the process's start):
	// they start from zero at every start of outpost.
	CountersSince time.Time
	// LowDiskFloor is [cache] low_disk_floor, in percent.
	LowDiskFloor float64
	// TopSegmentsTTL is how long a top-segments ranking is reused (it
	// reads every segment record; default 30 s).
	TopSegmentsTTL time.Duration
	Now            func() time.Time
}

// Reporter makes the reports of its Sources.
type Reporter struct {
	src Sources

	topMu sync.Mutex
	top   *TopSegments
}

// New returns a reporter for src.
func New(src Sources) *Reporter {
	if src.Now == nil {
		src.Now = time.Now
	}
	if src.TopSegmentsTTL <= 0 {
		src.TopSegmentsTTL = 30 * time.Second
	}
	return &Reporter{src: src}
}

// Store returns the open store, or nil.
func (r *Reporter) Store() SegmentStore {
	if r.src.Store == nil {
		return nil
	}
	return r.src.Store()
}

// Leaders reports the peer leaders.
func (r *Reporter) Leaders() Leaders {
	if r.src.Leaders == nil {
		return Leaders{Peers: []LeaderPeer{}}
	}
	l := r.src.Leaders.Leaders()
	if l.Peers == nil {
		l.Peers = []LeaderPeer{}
	}
	l.Totals = LeaderCounters{}
	for _, p := range l.Peers {
		l.Totals.add(p.LeaderCounters)
	}
	return l
}

// Discovery reports discovery and XDP.
func (r *Reporter) Discovery() Discovery {
	if r.src.Discovery == nil {
		return Discovery{Interfaces: []DiscoveryInterface{}, Dropped: map[string]uint64{}, XDPDropped: map[string]uint64{}}
	}
	d := r.src.Discovery.Discovery()
	if d.Interfaces == nil {
		d.Interfaces = []DiscoveryInterface{}
	}
	d.DiscoveryCounters = DiscoveryCounters{}
	d.Dropped, d.XDPDropped = map[string]uint64{}, map[string]uint64{}
	for i := range d.Interfaces {
		ifc := &d.Interfaces[i]
		if ifc.Dropped == nil {
			ifc.Dropped = map[string]uint64{}
		}
		if ifc.XDPDropped == nil {
			ifc.XDPDropped = map[string]uint64{}
		}
		for reason, n := range ifc.Dropped {
			d.Dropped[reason] += n
		}
		d.ProbesSeen += ifc.ProbesSeen
		d.Answered += ifc.Answered
		d.Forwarded += ifc.Forwarded
		for reason, n := range ifc.XDPDropped {
			d.XDPDropped[reason] += n
		}
	}
	return d
}
