// Package history keeps a bounded, in-memory series of the box's traffic
// counters, sampled periodically, for the status page's "bytes served vs
// WAN saved" chart. It is lost at a restart: the metrics (Prometheus) are
// the long-term record.
package history

import (
	"context"
	"sync"
	"time"

	"github.com/outpost-appliance/outpost/firmware/supervise"
)

// Defaults: a day of one-minute samples.
const (
	DefaultInterval = time.Minute
	DefaultSize     = 24 * 60
)

// Sample is the counters at one moment. Counters are cumulative since
// outpost started; the page plots the differences between samples.
type Sample struct {
	Time time.Time `json:"time"`
	// BytesServed is every block byte served to clients: from the cache
	// and relayed from other subnets.
	BytesServed uint64 `json:"bytes_served"`
	// WANBytesSaved is the part served from the cache.
	WANBytesSaved uint64  `json:"wan_bytes_saved"`
	BytesPulled   uint64  `json:"bytes_pulled"`
	Hits          uint64  `json:"hits"`
	Misses        uint64  `json:"misses"`
	CacheBytes    int64   `json:"cache_bytes"`
	CacheFill     float64 `json:"cache_fill"`
}

// History is a bounded series of samples, safe for concurrent use.
type History struct {
	interval time.Duration
	mu       sync.Mutex
	samples  []Sample // a ring of cap Size
	next     int      // where the next sample goes once full
}

// New returns a history of at most size samples taken every interval
// (zero values: the defaults).
func New(size int, interval time.Duration) *History {
	if size <= 0 {
		size = DefaultSize
	}
	if interval <= 0 {
		interval = DefaultInterval
	}
	return &History{interval: interval, samples: make([]Sample, 0, size)}
}

// Interval is the sampling interval.
func (h *History) Interval() time.Duration { return h.interval }

// Add appends a sample, dropping the oldest when full.
func (h *History) Add(s Sample) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.samples) < cap(h.samples) {
		h.samples = append(h.samples, s)
		return
	}
	h.samples[h.next] = s
	h.next = (h.next + 1) % len(h.samples)
}

// Samples returns the samples, oldest first.
func (h *History) Samples() []Sample {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]Sample, 0, len(h.samples))
	out = append(out, h.samples[h.next:]...)
	return append(out, h.samples[:h.next]...)
}

// Service samples with take every interval (and once at start) until it
// is stopped.
func (h *History) Service(take func() Sample) supervise.Service {
	return supervise.Func{ServiceName: "history", Fn: func(ctx context.Context, ready func()) error {
		h.Add(take())
		ready()
		tick := time.NewTicker(h.interval)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-tick.C:
				h.Add(take())
			}
		}
	}}
}
