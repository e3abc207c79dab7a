// Package ratelimit is a token bucket, alone or keyed by source, sized for
// the leader's packet paths: probes per client, forwards per peer.
package ratelimit

import (
	"sync"
	"time"
)

// Bucket allows Rate events per second with bursts of up to Burst. The
// zero Rate means no limit. It is not safe for concurrent use on its own;
// Keyed and the callers that share one guard it.
type Bucket struct {
	Rate, Burst float64
	tokens      float64
	last        time.Time
}

// Allow takes a token at now, reporting false when none is left.
func (b *Bucket) Allow(now time.Time) bool {
	if b.Rate <= 0 {
		return true
	}
	burst := max(b.Burst, 1)
	if b.last.IsZero() {
		b.tokens = burst
	} else if d := now.Sub(b.last).Seconds(); d > 0 {
		b.tokens = min(burst, b.tokens+d*b.Rate)
	}
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// Limiter is a Bucket safe for concurrent use.
type Limiter struct {
	mu sync.Mutex
	b  Bucket
}

// NewLimiter returns a limiter of rate events per second and burst.
func NewLimiter(rate, burst float64) *Limiter {
	return &Limiter{b: Bucket{Rate: rate, Burst: burst}}
}

// Allow takes a token at now.
func (l *Limiter) Allow(now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Allow(now)
}

// Keyed keeps one bucket per key (a source address), at most MaxKeys of
// them: when full, buckets idle for a second are dropped, and if none is,
// new keys are refused rather than letting a spoofing flood grow memory.
type Keyed[K comparable] struct {
	Rate, Burst float64
	MaxKeys     int

	mu      sync.Mutex
	buckets map[K]*Bucket
}

// NewKeyed returns a keyed limiter.
func NewKeyed[K comparable](rate, burst float64, maxKeys int) *Keyed[K] {
	return &Keyed[K]{Rate: rate, Burst: burst, MaxKeys: maxKeys, buckets: map[K]*Bucket{}}
}

// Allow takes a token from key's bucket at now.
func (k *Keyed[K]) Allow(key K, now time.Time) bool {
	if k.Rate <= 0 {
		return true
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	b, ok := k.buckets[key]
	if !ok {
		if len(k.buckets) >= k.MaxKeys {
			for key, old := range k.buckets {
				if now.Sub(old.last) > time.Second {
					delete(k.buckets, key)
				}
			}
			if len(k.buckets) >= k.MaxKeys {
				return false
			}
		}
		b = &Bucket{Rate: k.Rate, Burst: k.Burst}
		k.buckets[key] = b
	}
	return b.Allow(now)
}
