// Package metrics serves Outpost's figures in the Prometheus exposition
// format (/metrics): the same figures as the management API, from the
// same reports, as counters and gauges with stable names and labels, plus
// the Go runtime and process collectors. Everything lives in a registry of
// its own; nothing is registered globally.
package metrics

import (
	"log/slog"
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/outpost-appliance/outpost/cache/preload"
	"github.com/outpost-appliance/outpost/firmware/events"
	"github.com/outpost-appliance/outpost/firmware/report"
	"github.com/outpost-appliance/outpost/firmware/supervise"
)

// Sources are what the metrics read. Nil members are left out.
type Sources struct {
	Version string
	Mode    string
	// SafeMode: the configuration had errors and safe defaults run.
	SafeMode   bool
	Report     *report.Reporter
	Supervisor interface{ Snapshot() []supervise.Status }
	Events     interface{ Counts() map[events.ID]uint64 }
	// Preload is the preload service (nil: not configured).
	Preload interface{ Stats() preload.Stats }
}

// NewRegistry returns a registry with Outpost's collector and the Go
// runtime and process collectors.
func NewRegistry(src Sources) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		newCollector(src),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return reg
}

// Handler serves reg in the exposition format.
func Handler(reg *prometheus.Registry, log *slog.Logger) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		ErrorHandling: promhttp.ContinueOnError,
	})
}

// metric is one family: its description and how it is typed.
type metric struct {
	desc *prometheus.Desc
	kind prometheus.ValueType
}

func (m metric) emit(ch chan<- prometheus.Metric, v float64, labels ...string) {
	ch <- prometheus.MustNewConstMetric(m.desc, m.kind, v, labels...)
}

// collector reads the sources at every scrape (const metrics), so the
// figures are exactly those the API shows at that moment.
type collector struct {
	src Sources
	all []metric

	buildInfo, safeMode                                                        metric
	serviceRunning, serviceRestarts                                            metric
	cacheUp, cacheBytes, cacheLimit, cacheSegments, cacheHeldSegments          metric
	cacheBlocks, cacheVerifiedBlocks, cacheTagBytes, cacheHitRatio             metric
	cacheOffers, cacheBlocksPulled, cachePulledBytes, cachePullFailures        metric
	cacheServedBytes, cacheHits, cacheMisses, cacheWANSaved                    metric
	cacheEvicted, cacheEvictedBytes, cacheDeleted, cacheCorrupt, cacheDiskFull metric
	fsBytes, fsFree, storeDiskBytes, diskLow                                   metric
	leaderUp, leaderPeerReachable, leaderLastContact, leaderForwardsSent       metric
	leaderForwardsReceived, leaderMatches, leaderRelayBytes, leaderAuthFail    metric
	discoveryUp, discoveryProbes, discoveryAnswered, discoveryForwarded        metric
	discoveryDropped, discoveryXDPDropped, discoveryXDPMode                    metric
	discoveryXDPPackets                                                        metric
	eventsTotal                                                                metric
	preloadUp, preloadJobs, preloadFetched, preloadStored, preloadFailures     metric
	preloadRate, preloadLimit, injectBlocks, injectBytes, injectRefused        metric
}

func newCollector(src Sources) *collector {
	c := &collector{src: src}
	def := func(kind prometheus.ValueType, name, help string, labels ...string) metric {
		m := metric{prometheus.NewDesc("outpost_"+name, help, labels, nil), kind}
		c.all = append(c.all, m)
		return m
	}
	gauge, counter := prometheus.GaugeValue, prometheus.CounterValue

	c.buildInfo = def(gauge, "build_info", "Always 1; the labels say which firmware runs and how.", "version", "mode")
	c.safeMode = def(gauge, "config_safe_mode", "1 when the configuration has errors and the box runs with safe defaults.")
	c.serviceRunning = def(gauge, "service_running", "1 when the service is running, 0 when it is starting, backing off, failed or stopped.", "service")
	c.serviceRestarts = def(counter, "service_restarts_total", "Restarts of the service after failures.", "service")

	c.cacheUp = def(gauge, "cache_up", "1 when the segment store is open (the hosted cache runs).")
	c.cacheBytes = def(gauge, "cache_bytes", "Live data in the store: held blocks and hashes.")
	c.cacheLimit = def(gauge, "cache_limit_bytes", "The store's effective size limit; 0 = none.")
	c.cacheSegments = def(gauge, "cache_segments", "Segment records in the store.")
	c.cacheHeldSegments = def(gauge, "cache_held_segments", "Segments holding at least one block.")
	c.cacheBlocks = def(gauge, "cache_blocks", "Blocks held.")
	c.cacheVerifiedBlocks = def(gauge, "cache_verified_blocks", "Blocks held that were checked against their hash (the rest are replayed).")
	c.cacheTagBytes = def(gauge, "cache_tag_bytes", "Bytes in the store by content tag (a segment offered under several tags counts under each).", "tag")
	c.cacheHitRatio = def(gauge, "cache_hit_ratio", "Blocks served / blocks asked for, since outpost started.")
	c.cacheOffers = def(counter, "cache_offers_total", "Segments offered by clients.", "tag")
	c.cacheBlocksPulled = def(counter, "cache_blocks_pulled_total", "Blocks pulled from offering clients.", "tag")
	c.cachePulledBytes = def(counter, "cache_pulled_bytes_total", "Block bytes pulled from offering clients.", "tag")
	c.cachePullFailures = def(counter, "cache_pull_failures_total", "Pulls from offering clients that failed.", "tag")
	c.cacheServedBytes = def(counter, "cache_served_bytes_total", "Block bytes served from the store.", "tag")
	c.cacheHits = def(counter, "cache_hits_total", "Blocks served from the store.", "tag")
	c.cacheMisses = def(counter, "cache_misses_total", "Blocks asked for and not held.", "tag")
	c.cacheWANSaved = def(counter, "cache_wan_saved_bytes_total", "Estimated WAN bytes saved: block bytes served from the store, which clients would otherwise have fetched from the origin.")
	c.cacheEvicted = def(counter, "cache_evicted_segments_total", "Segments evicted, by reason (limit, max-age, low-disk).", "reason")
	c.cacheEvictedBytes = def(counter, "cache_evicted_bytes_total", "Bytes of evicted segments.")
	c.cacheDeleted = def(counter, "cache_deleted_segments_total", "Segments deleted by an operator.")
	c.cacheCorrupt = def(counter, "cache_corrupt_blocks_total", "Stored blocks that failed their checksum and were dropped.")
	c.cacheDiskFull = def(counter, "cache_disk_full_puts_total", "Blocks refused for lack of space.")
	c.fsBytes = def(gauge, "data_filesystem_bytes", "Size of the data filesystem.")
	c.fsFree = def(gauge, "data_filesystem_free_bytes", "Free space on the data filesystem.")
	c.storeDiskBytes = def(gauge, "cache_disk_bytes", "Size of the store's directory on disk (Badger's overhead included).")
	c.diskLow = def(gauge, "data_filesystem_low", "1 when free space is below the low-disk floor.")

	c.leaderUp = def(gauge, "leader_up", "1 when the leader service runs.")
	c.leaderPeerReachable = def(gauge, "leader_peer_reachable", "1 when the peer leader answers the leader protocol's keepalives, else 0 (unreachable, or not known yet).", "peer", "address")
	c.leaderLastContact = def(gauge, "leader_peer_last_contact_timestamp_seconds", "When the peer leader last answered (Unix time).", "peer", "address")
	c.leaderForwardsSent = def(counter, "leader_forwards_sent_total", "Probes forwarded to the peer leader.", "peer", "address")
	c.leaderForwardsReceived = def(counter, "leader_forwards_received_total", "Probes the peer leader forwarded here.", "peer", "address")
	c.leaderMatches = def(counter, "leader_matches_total", "Segments found in the peer leader's subnet.", "peer", "address")
	c.leaderRelayBytes = def(counter, "leader_relay_bytes_total", "Block bytes relayed from the peer leader's subnet.", "peer", "address")
	c.leaderAuthFail = def(counter, "leader_auth_failures_total", "Forwarded messages that failed authentication.", "peer", "address")

	c.discoveryUp = def(gauge, "discovery_up", "1 when the discovery responder runs.")
	c.discoveryProbes = def(counter, "discovery_probes_total", "WS-Discovery probes seen.", "interface")
	c.discoveryAnswered = def(counter, "discovery_answered_total", "Probes answered from the store.", "interface")
	c.discoveryForwarded = def(counter, "discovery_forwarded_total", "Probes forwarded to peer leaders.", "interface")
	c.discoveryDropped = def(counter, "discovery_dropped_total", "Probes the responder dropped on the socket path, by reason.", "interface", "reason")
	c.discoveryXDPDropped = def(counter, "discovery_xdp_dropped_total", "Probes dropped by the XDP program, by reason.", "interface", "reason")
	c.discoveryXDPMode = def(gauge, "discovery_xdp_mode", "1 for the XDP mode the interface runs in (native, generic, off).", "interface", "mode")
	c.discoveryXDPPackets = def(counter, "discovery_xdp_packets_total", "Packets the XDP program handled on the interface, by outcome (captured, pass-v2, drop-not-held, …).", "interface", "outcome")

	c.eventsTotal = def(counter, "events_total", "Events by ID (docs/events.md), suppressed ones included.", "id", "name")

	c.preloadUp = def(gauge, "preload_up", "1 when the preload service runs.")
	c.preloadJobs = def(gauge, "preload_jobs", "Preload jobs by state (queued, running, paused, retrying, completed, failed, cancelled).", "state")
	c.preloadFetched = def(counter, "preload_fetched_bytes_total", "Bytes preloading read from origins (the WAN cost).")
	c.preloadStored = def(counter, "preload_stored_blocks_total", "Blocks (V1) and segments (V2) preloading stored, verified.")
	c.preloadFailures = def(counter, "preload_failed_attempts_total", "Preload attempts that failed.")
	c.preloadRate = def(gauge, "preload_rate_bits_per_second", "The current fetch rate of all preloading.")
	c.preloadLimit = def(gauge, "preload_limit_bits_per_second", "The total bandwidth limit of preloading; 0 = none.")
	c.injectBlocks = def(counter, "inject_stored_blocks_total", "Blocks and segments stored from outpost inject uploads, verified.")
	c.injectBytes = def(counter, "inject_stored_bytes_total", "Content bytes stored from outpost inject uploads.")
	c.injectRefused = def(counter, "inject_refused_total", "Inject uploads refused (wrong secret, data not matching its content information).")
	return c
}

// Describe implements prometheus.Collector.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range c.all {
		ch <- m.desc
	}
}

// Collect implements prometheus.Collector.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	c.buildInfo.emit(ch, 1, c.src.Version, c.src.Mode)
	c.safeMode.emit(ch, boolValue(c.src.SafeMode))
	if sup := c.src.Supervisor; sup != nil {
		for _, s := range sup.Snapshot() {
			c.serviceRunning.emit(ch, boolValue(s.State == supervise.Running), s.Name)
			c.serviceRestarts.emit(ch, float64(s.Restarts), s.Name)
		}
	}
	if r := c.src.Report; r != nil {
		c.collectCache(ch, r.Cache())
		c.collectLeaders(ch, r.Leaders())
		c.collectDiscovery(ch, r.Discovery())
	}
	if p := c.src.Preload; p != nil {
		c.collectPreload(ch, p.Stats())
	}
	if ev := c.src.Events; ev != nil {
		for id, n := range ev.Counts() {
			c.eventsTotal.emit(ch, float64(n), strconv.Itoa(int(id)), events.Lookup(id).Name)
		}
	}
}

func (c *collector) collectCache(ch chan<- prometheus.Metric, cache report.Cache) {
	c.cacheUp.emit(ch, boolValue(cache.Running))
	for _, name := range report.TagNames() {
		t := cache.Tags[name]
		c.cacheOffers.emit(ch, float64(t.Offers), name)
		c.cacheBlocksPulled.emit(ch, float64(t.BlocksPulled), name)
		c.cachePulledBytes.emit(ch, float64(t.BytesPulled), name)
		c.cachePullFailures.emit(ch, float64(t.PullFailures), name)
		c.cacheServedBytes.emit(ch, float64(t.BytesServed), name)
		c.cacheHits.emit(ch, float64(t.Hits), name)
		c.cacheMisses.emit(ch, float64(t.Misses), name)
	}
	c.cacheHitRatio.emit(ch, cache.HitRatio)
	c.cacheWANSaved.emit(ch, float64(cache.WANBytesSaved))
	if !cache.Running {
		return // the store's figures are unknown, not zero
	}
	c.cacheBytes.emit(ch, float64(cache.Bytes))
	c.cacheLimit.emit(ch, float64(cache.LimitBytes))
	c.cacheSegments.emit(ch, float64(cache.Segments))
	c.cacheHeldSegments.emit(ch, float64(cache.HeldSegments))
	c.cacheBlocks.emit(ch, float64(cache.Blocks))
	c.cacheVerifiedBlocks.emit(ch, float64(cache.VerifiedBlocks))
	for _, name := range report.TagNames() {
		c.cacheTagBytes.emit(ch, float64(cache.Tags[name].StoredBytes), name)
	}
	// Every reason, so that rate() works from the first eviction on.
	for _, reason := range []string{"limit", "max-age", "low-disk"} {
		c.cacheEvicted.emit(ch, float64(cache.EvictedSegments[reason]), reason)
	}
	c.cacheEvictedBytes.emit(ch, float64(cache.EvictedBytes))
	c.cacheDeleted.emit(ch, float64(cache.DeletedSegments))
	c.cacheCorrupt.emit(ch, float64(cache.CorruptBlocks))
	c.cacheDiskFull.emit(ch, float64(cache.DiskFullPuts))
	c.fsBytes.emit(ch, float64(cache.Disk.FilesystemBytes))
	c.fsFree.emit(ch, float64(cache.Disk.FreeBytes))
	c.storeDiskBytes.emit(ch, float64(cache.Disk.StoreBytes))
	c.diskLow.emit(ch, boolValue(cache.Disk.Low))
}

func (c *collector) collectLeaders(ch chan<- prometheus.Metric, l report.Leaders) {
	c.leaderUp.emit(ch, boolValue(l.Running))
	for _, p := range l.Peers {
		c.leaderPeerReachable.emit(ch, boolValue(p.State == report.PeerReachable), p.Name, p.Address)
		if !p.LastContact.IsZero() {
			c.leaderLastContact.emit(ch, float64(p.LastContact.UnixNano())/1e9, p.Name, p.Address)
		}
		c.leaderForwardsSent.emit(ch, float64(p.ForwardsSent), p.Name, p.Address)
		c.leaderForwardsReceived.emit(ch, float64(p.ForwardsReceived), p.Name, p.Address)
		c.leaderMatches.emit(ch, float64(p.Matches), p.Name, p.Address)
		c.leaderRelayBytes.emit(ch, float64(p.RelayBytes), p.Name, p.Address)
		c.leaderAuthFail.emit(ch, float64(p.AuthFailures), p.Name, p.Address)
	}
}

func (c *collector) collectDiscovery(ch chan<- prometheus.Metric, d report.Discovery) {
	c.discoveryUp.emit(ch, boolValue(d.Running))
	for _, ifc := range d.Interfaces {
		c.discoveryProbes.emit(ch, float64(ifc.ProbesSeen), ifc.Name)
		c.discoveryAnswered.emit(ch, float64(ifc.Answered), ifc.Name)
		c.discoveryForwarded.emit(ch, float64(ifc.Forwarded), ifc.Name)
		for reason, n := range ifc.Dropped {
			c.discoveryDropped.emit(ch, float64(n), ifc.Name, reason)
		}
		for reason, n := range ifc.XDPDropped {
			c.discoveryXDPDropped.emit(ch, float64(n), ifc.Name, reason)
		}
		if ifc.XDPMode != "" {
			c.discoveryXDPMode.emit(ch, 1, ifc.Name, ifc.XDPMode)
		}
		for outcome, n := range ifc.XDPCounters {
			c.discoveryXDPPackets.emit(ch, float64(n), ifc.Name, outcome)
		}
	}
}

func (c *collector) collectPreload(ch chan<- prometheus.Metric, st preload.Stats) {
	c.preloadUp.emit(ch, boolValue(st.Running))
	for state, n := range st.Jobs {
		c.preloadJobs.emit(ch, float64(n), string(state))
	}
	c.preloadFetched.emit(ch, float64(st.FetchedBytes))
	c.preloadStored.emit(ch, float64(st.StoredBlocks))
	c.preloadFailures.emit(ch, float64(st.FailedAttempts))
	c.preloadRate.emit(ch, st.RateBits)
	c.preloadLimit.emit(ch, float64(st.Limit))
	c.injectBlocks.emit(ch, float64(st.Inject.Blocks))
	c.injectBytes.emit(ch, float64(st.Inject.Bytes))
	c.injectRefused.emit(ch, float64(st.Inject.Refused))
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
