// Package reporttest provides in-memory stand-ins for the sources of
// package report — a segment store, leader and discovery statistics — so
// that the API, metrics and status page can be tested without Badger or
// the network services.
package reporttest

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/outpost-appliance/outpost/cache/hostedcache"
	"github.com/outpost-appliance/outpost/cache/store"
	"github.com/outpost-appliance/outpost/firmware/report"
	"github.com/outpost-appliance/outpost/peerdist/pccrc"
)

// Store is an in-memory report.SegmentStore.
type Store struct {
	mu       sync.Mutex
	segments []store.SegmentInfo // in ID order
	Base     store.Stats
}

// ID returns a 32-byte segment ID made from n.
func ID(n byte) []byte { return bytes.Repeat([]byte{n}, 32) }

// NewStore returns a store holding n segments: segment i (ID(i+1)) has
// i*10 hits, i+1 of its 4 blocks held, verified when i is even.
func NewStore(n int, now time.Time) *Store {
	s := &Store{Base: store.Stats{LimitBytes: 100 << 20, FilesystemSize: 1 << 30, FilesystemFree: 512 << 20, DiskBytes: 3 << 20,
		Evicted: map[store.Reason]int64{store.ReasonLimit: 2}, EvictedBytes: 1 << 20}}
	for i := range n {
		info := store.SegmentInfo{
			SegmentID: ID(byte(i + 1)), Version: pccrc.V1, HashAlgo: pccrc.SHA256, Size: 4 * 65536, BlockCount: 4,
			HashesKnown: i%2 == 0, FirstSeen: now.Add(-time.Duration(n-i) * time.Hour), LastAccess: now.Add(-time.Duration(i) * time.Minute),
			Hits: uint64(i * 10), Tags: []string{"BITS-4.0"}, Bytes: int64(i+1) * 65536,
		}
		for b := range min(i+1, 4) {
			info.Held.Set(uint32(b))
			if i%2 == 0 {
				info.Verified.Set(uint32(b))
			}
		}
		s.segments = append(s.segments, info)
	}
	return s
}

// Stats implements report.SegmentStore.
func (s *Store) Stats() store.Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.Base
	st.TagBytes = map[string]int64{}
	for _, seg := range s.segments {
		st.Segments++
		st.Bytes += seg.Bytes
		st.TagBytes["BITS-4.0"] += seg.Bytes
		if held := seg.Held.Len(); held > 0 {
			st.HeldSegments++
			st.Blocks += int64(held)
			st.VerifiedBlocks += int64(seg.Verified.Len())
		}
	}
	return st
}

// ListSegments implements report.SegmentStore.
func (s *Store) ListSegments(ctx context.Context, after []byte, limit int) ([]store.SegmentInfo, []byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if limit <= 0 {
		limit = 100
	}
	var out []store.SegmentInfo
	for _, seg := range s.segments {
		if after != nil && bytes.Compare(seg.SegmentID, after) <= 0 {
			continue
		}
		if len(out) == limit {
			return out, out[len(out)-1].SegmentID, nil
		}
		out = append(out, seg)
	}
	return out, nil, nil
}

// Segment implements report.SegmentStore.
func (s *Store) Segment(ctx context.Context, id []byte) (store.SegmentInfo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, seg := range s.segments {
		if bytes.Equal(seg.SegmentID, id) {
			return seg, nil
		}
	}
	return store.SegmentInfo{}, store.ErrNotFound
}

// DeleteSegment implements report.SegmentStore.
func (s *Store) DeleteSegment(ctx context.Context, id []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, seg := range s.segments {
		if bytes.Equal(seg.SegmentID, id) {
			s.segments = slices.Delete(s.segments, i, i+1)
			s.Base.Deleted++
			return nil
		}
	}
	return fmt.Errorf("store: delete: %w", store.ErrNotFound)
}

// Flush implements report.SegmentStore.
func (s *Store) Flush(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.segments = nil
	return nil
}

// Len is the number of segments held.
func (s *Store) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.segments)
}

// TagStats returns hosted-cache counters: BITS-4.0 served 900 blocks of
// 1 MiB in all and missed 100; WinINet had 3 pull failures.
func TagStats() map[string]hostedcache.TagCounters {
	return map[string]hostedcache.TagCounters{
		"BITS-4.0": {Offers: 12, BlocksPulled: 40, BytesPulled: 40 << 16, BytesServed: 1 << 20, Hits: 900, Misses: 100},
		"WinINet":  {Offers: 2, PullFailures: 3},
	}
}

// Leaders is a fixed report.LeaderStats: two peers, one unreachable.
type Leaders struct{ At time.Time }

// Leaders implements report.LeaderStats.
func (l Leaders) Leaders() report.Leaders {
	return report.Leaders{Running: true, Forwarding: true, Peers: []report.LeaderPeer{
		{Name: "berlin", Address: "10.2.0.5:3704", State: report.PeerReachable, LastContact: l.At,
			LeaderCounters: report.LeaderCounters{ForwardsSent: 10, ForwardsReceived: 4, Matches: 3, RelayBytes: 5 << 16, AuthFailures: 0}},
		{Name: "paris", Address: "10.3.0.5:3704", State: report.PeerUnreachable,
			LeaderCounters: report.LeaderCounters{ForwardsSent: 7, AuthFailures: 2}},
	}}
}

// Discovery is a fixed report.DiscoveryStats: two interfaces.
type Discovery struct{}

// Discovery implements report.DiscoveryStats.
func (Discovery) Discovery() report.Discovery {
	return report.Discovery{Running: true, Interfaces: []report.DiscoveryInterface{
		{Name: "eth0", XDPMode: "native", DiscoveryCounters: report.DiscoveryCounters{ProbesSeen: 1000, Answered: 40, Forwarded: 60},
			Dropped: map[string]uint64{"duplicate": 5}, XDPDropped: map[string]uint64{"not-held": 880, "rate-limit": 20},
			XDPCounters: map[string]uint64{"captured": 100, "drop-not-held": 880, "drop-rate-limit": 20, "pass-v2": 3}},
		{Name: "eth0.20", XDPMode: "generic", DiscoveryCounters: report.DiscoveryCounters{ProbesSeen: 10, Answered: 1}},
	}}
}

// Sources returns report sources over st (nil: the hosted cache is not
// running) with TagStats, and with the leader and discovery stand-ins
// when withServices.
func Sources(st *Store, withServices bool, now time.Time) report.Sources {
	src := report.Sources{
		Store: func() report.SegmentStore {
			if st == nil {
				return nil
			}
			return st
		},
		TagStats:      TagStats,
		CountersSince: now.Add(-time.Hour),
		LowDiskFloor:  5,
		Now:           func() time.Time { return now },
	}
	if withServices {
		src.Leaders = Leaders{At: now.Add(-time.Minute)}
		src.Discovery = Discovery{}
	}
	return src
}
