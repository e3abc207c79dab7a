package hostedcache

import (
	"net/netip"
	"sync/atomic"

	"github.com/outpost-appliance/outpost/peerdist/pchc"
)

// TagCounters are the counters of one content tag.
type TagCounters struct {
	Offers       uint64 `json:"offers"`
	BlocksPulled uint64 `json:"blocks_pulled"`
	BytesPulled  uint64 `json:"bytes_pulled"`
	PullFailures uint64 `json:"pull_failures"`
	BytesServed  uint64 `json:"bytes_served"`
	Hits         uint64 `json:"hits"`   // blocks served
	Misses       uint64 `json:"misses"` // blocks asked for and not held
}

type tagCounters struct {
	offers, blocksPulled, bytesPulled, pullFailures, bytesServed, hits, misses atomic.Uint64
}

// Stats counts offers, pulls and serving per content tag. It is a
// retrieval.Observer and a PullObserver; all methods are safe for
// concurrent use and never block.
type Stats struct {
	tags [pchc.NumTags]tagCounters
}

// counters are those of a tag name; unknown names count as Other.
func (s *Stats) counters(tag string) *tagCounters { return &s.tags[pchc.TagIndex(tag)] }

// Offered counts an offered segment.
func (s *Stats) Offered(tag string) { s.counters(tag).offers.Add(1) }

// Served implements retrieval.Observer.
func (s *Stats) Served(_ []byte, tag string, _ uint32, bytes int) {
	c := s.counters(tag)
	c.hits.Add(1)
	c.bytesServed.Add(uint64(bytes))
}

// Missed implements retrieval.Observer.
func (s *Stats) Missed(_ []byte, tag string, _ uint32) { s.counters(tag).misses.Add(1) }

// Pulled implements PullObserver.
func (s *Stats) Pulled(_ []byte, tag string, blocks, bytes int) {
	c := s.counters(tag)
	c.blocksPulled.Add(uint64(blocks))
	c.bytesPulled.Add(uint64(bytes))
}

// PullFailed implements PullObserver.
func (s *Stats) PullFailed(_ []byte, tag string, _ netip.AddrPort, _ error) {
	s.counters(tag).pullFailures.Add(1)
}

// Snapshot returns the counters by tag name.
func (s *Stats) Snapshot() map[string]TagCounters {
	out := make(map[string]TagCounters, pchc.NumTags)
	for i, name := range pchc.TagNames() {
		c := &s.tags[i]
		out[name] = TagCounters{
			Offers: c.offers.Load(), BlocksPulled: c.blocksPulled.Load(), BytesPulled: c.bytesPulled.Load(),
			PullFailures: c.pullFailures.Load(), BytesServed: c.bytesServed.Load(), Hits: c.hits.Load(), Misses: c.misses.Load(),
		}
	}
	return out
}

// pullObservers tells each of several observers of every pull.
type pullObservers []PullObserver

func (os pullObservers) Pulled(segmentID []byte, tag string, blocks, bytes int) {
	for _, o := range os {
		o.Pulled(segmentID, tag, blocks, bytes)
	}
}

func (os pullObservers) PullFailed(segmentID []byte, tag string, peer netip.AddrPort, err error) {
	for _, o := range os {
		o.PullFailed(segmentID, tag, peer, err)
	}
}
