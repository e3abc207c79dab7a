package events

import (
	"slices"
	"time"
)

// Query selects events; zero fields select everything.
type Query struct {
	IDs   []ID
	Since time.Time // at or after
	Until time.Time // before
	// Before returns only events older than this sequence number (the
	// cursor for the next page).
	Before uint64
	// Limit caps the events returned (default 100).
	Limit int
}

// DefaultLimit is Query's default page size.
const DefaultLimit = 100

// Page is what Query returns.
type Page struct {
	// Events, newest first.
	Events []Event `json:"events"`
	// Next is the Before cursor for the next (older) page; 0 at the end.
	Next uint64 `json:"next,omitempty"`
	// Oldest and Latest are the sequence numbers held (0 if none): an
	// admin can tell how far back the log reaches.
	Oldest uint64 `json:"oldest_seq"`
	Latest uint64 `json:"latest_seq"`
	// OldestTime is when the oldest held event was logged.
	OldestTime time.Time `json:"oldest_time,omitzero"`
}

// Query returns the events q selects, newest first.
func (l *Log) Query(q Query) Page {
	limit := q.Limit
	if limit <= 0 {
		limit = DefaultLimit
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	page := Page{Events: []Event{}}
	if len(l.events) > 0 {
		page.Oldest, page.Latest = l.events[0].Seq, l.events[len(l.events)-1].Seq
		page.OldestTime = l.events[0].Time
	}
	for i := len(l.events) - 1; i >= 0; i-- {
		ev := l.events[i]
		// No early exit on Since: a clock set at boot (no RTC, NTP
		// later) can leave older events with later times.
		if q.Before != 0 && ev.Seq >= q.Before ||
			!q.Until.IsZero() && !ev.Time.Before(q.Until) ||
			!q.Since.IsZero() && ev.Time.Before(q.Since) ||
			len(q.IDs) > 0 && !slices.Contains(q.IDs, ev.ID) {
			continue
		}
		if len(page.Events) == limit {
			page.Next = page.Events[limit-1].Seq
			return page
		}
		page.Events = append(page.Events, ev)
	}
	return page
}
