// Package seen remembers keys for a fixed time in bounded memory: probe
// MessageIDs already handled, forwarding nonces already accepted.
package seen

import (
	"sync"
	"time"
)

// Set holds keys for TTL, at most Max of them. Every key lives equally
// long, so insertion order is expiry order and a FIFO ring suffices; when
// full, the oldest key is forgotten early.
type Set[K comparable] struct {
	ttl time.Duration
	max int

	mu    sync.Mutex
	keys  map[K]time.Time
	order []entry[K] // ring, oldest at head
	head  int
	n     int
}

type entry[K comparable] struct {
	key K
	at  time.Time
}

// New returns a set remembering keys for ttl, at most max of them.
func New[K comparable](ttl time.Duration, max int) *Set[K] {
	return &Set[K]{ttl: ttl, max: max, keys: make(map[K]time.Time), order: make([]entry[K], max)}
}

// Add records key at now and reports whether it was new (not seen within
// the TTL).
func (s *Set[K]) Add(key K, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expire(now)
	if _, ok := s.keys[key]; ok {
		return false
	}
	if s.n == s.max {
		s.pop()
	}
	s.order[(s.head+s.n)%s.max] = entry[K]{key, now}
	s.n++
	s.keys[key] = now
	return true
}

// Has reports whether key was added within the TTL.
func (s *Set[K]) Has(key K, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expire(now)
	_, ok := s.keys[key]
	return ok
}

// Len is the number of keys held.
func (s *Set[K]) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

func (s *Set[K]) expire(now time.Time) {
	for s.n > 0 && now.Sub(s.order[s.head].at) >= s.ttl {
		s.pop()
	}
}

func (s *Set[K]) pop() {
	e := s.order[s.head]
	if at, ok := s.keys[e.key]; ok && at.Equal(e.at) {
		delete(s.keys, e.key)
	}
	s.order[s.head] = entry[K]{}
	s.head = (s.head + 1) % s.max
	s.n--
}
