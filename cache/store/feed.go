package store

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/outpost-appliance/outpost/peerdist/pccrc"
)

// The change feed tells the discovery responder and the XDP map which
// segments the store holds. Publishing never blocks the writer: each
// subscriber has a bounded queue, and one that falls further behind loses
// its queue and receives a Resync event next, after which it rebuilds its
// view from ListSegments and carries on with the events that follow.

// EventKind says what happened to a segment.
type EventKind int

// The event kinds.
const (
	// SegmentAdded: the segment holds its first block (it can now be
	// announced).
	SegmentAdded EventKind = iota + 1
	// SegmentEvicted: the store dropped the segment to stay within its
	// bounds (Reason: limit, max-age, low-disk).
	SegmentEvicted
	// SegmentDeleted: the segment holds no block any more because an
	// operator deleted it or its last block failed a check (Reason).
	SegmentDeleted
	// StoreFlushed: every segment is gone (Flush).
	StoreFlushed
	// Resync: the subscriber missed events; rebuild from ListSegments.
	// Events after a Resync may repeat what the listing shows: apply them
	// idempotently.
	Resync
)

func (k EventKind) String() string {
	switch k {
	case SegmentAdded:
		return "added"
	case SegmentEvicted:
		return "evicted"
	case SegmentDeleted:
		return "deleted"
	case StoreFlushed:
		return "flushed"
	case Resync:
		return "resync"
	}
	return "unknown"
}

// Reason says why a segment left the store.
type Reason string

// The reasons.
const (
	ReasonLimit    Reason = "limit"    // over the size limit (LRU)
	ReasonMaxAge   Reason = "max-age"  // not accessed for MaxAge
	ReasonLowDisk  Reason = "low-disk" // filesystem below the free-space floor
	ReasonOperator Reason = "operator" // DeleteSegment
	ReasonCorrupt  Reason = "corrupt"  // its last block failed its checksum
	ReasonReplaced Reason = "replaced" // content information disowned its replayed blocks
	ReasonFlush    Reason = "flush"    // Flush
)

// Event is one change-feed entry.
type Event struct {
	Kind       EventKind
	SegmentID  []byte // nil for StoreFlushed and Resync
	Version    pccrc.Version
	HeldBlocks int // for SegmentAdded
	Reason     Reason
}

type feed struct {
	mu     sync.Mutex
	subs   map[*Subscription]struct{}
	buffer int
	closed bool
}

func (f *feed) init(buffer int) {
	f.subs = make(map[*Subscription]struct{})
	f.buffer = buffer
}

// Subscription receives change-feed events in order.
type Subscription struct {
	f      *feed
	mu     sync.Mutex
	ring   []Event
	head   int // index of the oldest queued event
	count  int
	lost   bool // the queue overflowed: next event is Resync
	closed bool
	notify chan struct{}
	missed atomic.Uint64
}

// Subscribe starts a subscription. Events published from now on are
// queued for it (up to Options.FeedBuffer); take the current state from
// ListSegments after subscribing. Close it when done.
func (s *Store) Subscribe() *Subscription {
	sub := &Subscription{f: &s.feed, ring: make([]Event, s.feed.buffer), notify: make(chan struct{}, 1)}
	s.feed.mu.Lock()
	defer s.feed.mu.Unlock()
	if s.feed.closed {
		sub.closed = true
		return sub
	}
	s.feed.subs[sub] = struct{}{}
	return sub
}

func (f *feed) publish(ev Event) {
	if ev.SegmentID != nil {
		ev.SegmentID = append([]byte(nil), ev.SegmentID...)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for sub := range f.subs {
		sub.push(ev)
	}
}

func (f *feed) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	for sub := range f.subs {
		sub.mu.Lock()
		sub.closed = true
		sub.mu.Unlock()
		sub.wake()
	}
	clear(f.subs)
}

func (sub *Subscription) push(ev Event) {
	sub.mu.Lock()
	if sub.count == len(sub.ring) {
		// Too far behind: what is queued no longer adds up to the truth,
		// so drop it and have the subscriber resync.
		sub.missed.Add(uint64(sub.count) + 1)
		sub.head, sub.count, sub.lost = 0, 0, true
		clear(sub.ring)
	} else {
		sub.ring[(sub.head+sub.count)%len(sub.ring)] = ev
		sub.count++
	}
	sub.mu.Unlock()
	sub.wake()
}

func (sub *Subscription) wake() {
	select {
	case sub.notify <- struct{}{}:
	default:
	}
}

// Next returns the next event, waiting for one. After the store or the
// subscription is closed it returns what is queued, then ErrClosed.
func (sub *Subscription) Next(ctx context.Context) (Event, error) {
	for {
		sub.mu.Lock()
		switch {
		case sub.lost:
			sub.lost = false
			sub.mu.Unlock()
			return Event{Kind: Resync}, nil
		case sub.count > 0:
			ev := sub.ring[sub.head]
			sub.ring[sub.head] = Event{}
			sub.head = (sub.head + 1) % len(sub.ring)
			sub.count--
			sub.mu.Unlock()
			return ev, nil
		case sub.closed:
			sub.mu.Unlock()
			return Event{}, ErrClosed
		}
		sub.mu.Unlock()
		select {
		case <-sub.notify:
		case <-ctx.Done():
			return Event{}, ctx.Err()
		}
	}
}

// Missed is the number of events this subscription has lost to overflow.
func (sub *Subscription) Missed() uint64 { return sub.missed.Load() }

// Close ends the subscription.
func (sub *Subscription) Close() {
	sub.f.mu.Lock()
	delete(sub.f.subs, sub)
	sub.f.mu.Unlock()
	sub.mu.Lock()
	sub.closed = true
	sub.count = 0
	sub.mu.Unlock()
	sub.wake()
}
