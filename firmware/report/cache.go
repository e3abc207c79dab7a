package report

import (
	"github.com/outpost-appliance/outpost/cache/hostedcache"
	"github.com/outpost-appliance/outpost/peerdist/pchc"
)

// Cache is GET /api/v1/cache: the store's fill and the hosted cache's
// traffic. Counters count since CountersSince.
type Cache struct {
	// Running: the store is open (the hosted cache runs). When it is not,
	// the store's figures are zero and the counters are still shown.
	Running       bool   `json:"running"`
	CountersSince string `json:"counters_since"`

	Bytes      int64 `json:"bytes"`       // live data: held blocks and hashes
	LimitBytes int64 `json:"limit_bytes"` // effective limit; 0 = none
	// Fill is Bytes / LimitBytes (0 without a limit).
	Fill           float64 `json:"fill"`
	Segments       int64   `json:"segments"`
	HeldSegments   int64   `json:"held_segments"`
	Blocks         int64   `json:"blocks"`
	VerifiedBlocks int64   `json:"verified_blocks"` // checked against their hash; the rest are replayed

	// Hits and Misses count blocks asked for: served, or not held.
	Hits     uint64  `json:"hits"`
	Misses   uint64  `json:"misses"`
	HitRatio float64 `json:"hit_ratio"` // Hits / (Hits + Misses); 0 before any request
	// BytesServed is block data served from the store; BytesPulled what
	// the hosted cache fetched from the clients that offered it.
	BytesServed     uint64 `json:"bytes_served"`
	BytesPulled     uint64 `json:"bytes_pulled"`
	BlocksPulled    uint64 `json:"blocks_pulled"`
	SegmentsOffered uint64 `json:"segments_offered"`
	PullFailures    uint64 `json:"pull_failures"`
	// WANBytesSaved estimates the WAN traffic saved: every byte served
	// from the cache is one the client would otherwise have fetched from
	// the origin across the WAN (docs/management-api.md).
	WANBytesSaved uint64 `json:"wan_bytes_saved"`

	// Tags are the counters by content tag (WinINet, WebIO, BITS-4.0,
	// SMB, Other), with the store's bytes under each.
	Tags map[string]Tag `json:"tags"`

	EvictedSegments map[string]int64 `json:"evicted_segments"` // by reason, since the store opened
	EvictedBytes    int64            `json:"evicted_bytes"`
	DeletedSegments int64            `json:"deleted_segments"`
	CorruptBlocks   int64            `json:"corrupt_blocks"`
	DiskFullPuts    int64            `json:"disk_full_puts"`
	Disk            Disk             `json:"disk"`
}

// Tag is the traffic of one content tag.
type Tag struct {
	hostedcache.TagCounters
	StoredBytes int64 `json:"stored_bytes"`
}

// Disk is the data filesystem as the store last measured it.
type Disk struct {
	FilesystemBytes uint64 `json:"filesystem_bytes"`
	FreeBytes       uint64 `json:"free_bytes"`
	StoreBytes      int64  `json:"store_bytes"` // the store's directory, Badger's overhead included
	// Low: free space is below the floor ([cache] low_disk_floor).
	Low          bool    `json:"low"`
	FloorPercent float64 `json:"floor_percent"`
}

// TagNames are the content tags counters are kept for, in display order.
func TagNames() []string {
	names := pchc.TagNames()
	return names[:]
}

// Cache reports the cache.
func (r *Reporter) Cache() Cache {
	c := Cache{
		CountersSince:   r.src.CountersSince.UTC().Format("2006-01-02T15:04:05Z"),
		Tags:            map[string]Tag{},
		EvictedSegments: map[string]int64{},
		Disk:            Disk{FloorPercent: r.src.LowDiskFloor},
	}
	var tags map[string]hostedcache.TagCounters
	if r.src.TagStats != nil {
		tags = r.src.TagStats()
	}
	for _, name := range TagNames() {
		tc := tags[name]
		c.Tags[name] = Tag{TagCounters: tc}
		c.Hits += tc.Hits
		c.Misses += tc.Misses
		c.BytesServed += tc.BytesServed
		c.BytesPulled += tc.BytesPulled
		c.BlocksPulled += tc.BlocksPulled
		c.SegmentsOffered += tc.Offers
		c.PullFailures += tc.PullFailures
	}
	if c.Hits+c.Misses > 0 {
		c.HitRatio = float64(c.Hits) / float64(c.Hits+c.Misses)
	}
	c.WANBytesSaved = c.BytesServed

	st := r.Store()
	if st == nil {
		return c
	}
	s := st.Stats()
	c.Running = true
	c.Bytes, c.LimitBytes = s.Bytes, s.LimitBytes
	if s.LimitBytes > 0 {
		c.Fill = float64(s.Bytes) / float64(s.LimitBytes)
	}
	c.Segments, c.HeldSegments, c.Blocks, c.VerifiedBlocks = s.Segments, s.HeldSegments, s.Blocks, s.VerifiedBlocks
	for name, n := range s.TagBytes {
		t := c.Tags[name]
		t.StoredBytes = n
		c.Tags[name] = t
	}
	for reason, n := range s.Evicted {
		c.EvictedSegments[string(reason)] = n
	}
	c.EvictedBytes, c.DeletedSegments, c.CorruptBlocks, c.DiskFullPuts = s.EvictedBytes, s.Deleted, s.CorruptBlocks, s.DiskFullPuts
	c.Disk.FilesystemBytes, c.Disk.FreeBytes, c.Disk.StoreBytes = s.FilesystemSize, s.FilesystemFree, s.DiskBytes
	if r.src.LowDiskFloor > 0 && s.FilesystemSize > 0 {
		c.Disk.Low = float64(s.FilesystemFree) < float64(s.FilesystemSize)*r.src.LowDiskFloor/100
	}
	return c
}
