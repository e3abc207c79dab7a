package events

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/outpost-appliance/outpost/firmware/logging"
)

// Defaults for Options.
const (
	DefaultMaxBytes  = 1 << 20 // on disk: some 4000 events
	DefaultMaxEvents = 4096    // in memory, for queries
	DefaultBurst     = 10      // events of one ID logged one by one per window
	DefaultWindow    = time.Minute
)

// Event is one entry of the log.
type Event struct {
	// Seq numbers events in the order they were logged, across restarts
	// (Windows' EventRecordID).
	Seq     uint64    `json:"seq"`
	ID      ID        `json:"id"`
	Name    string    `json:"name"`
	Level   Level     `json:"level"`
	Time    time.Time `json:"time"`
	Message string    `json:"message"`
	Fields  Fields    `json:"fields,omitempty"`
}

// Options configure a Log.
type Options struct {
	// Dir keeps the events (on the data partition); "" keeps them in
	// memory only.
	Dir string
	// MaxBytes bounds the files in Dir, MaxEvents the events held in
	// memory and answered by Query.
	MaxBytes  int64
	MaxEvents int
	// Burst events of one ID are logged one by one per Window; the rest
	// are counted and summed up in one Suppressed event at the window's
	// end, as Windows does with its event 21 — a flood of one failure
	// must not push every other event out of the log.
	Burst  int
	Window time.Duration
	// Logger also receives every event (and so the console and log ring).
	Logger *slog.Logger
	Now    func() time.Time
}

// Log is the event log. Its methods are safe for concurrent use; Log
// never blocks for long and never fails its caller.
type Log struct {
	opts Options
	log  *slog.Logger

	mu       sync.Mutex
	ring     *logging.Ring // nil: memory only
	events   []Event       // oldest first, at most MaxEvents
	nextSeq  uint64
	counts   map[ID]uint64 // occurrences since Open, suppressed ones included
	limits   map[ID]*limit
	closed   bool
	diskErrs int
}

// Open opens the log in opts.Dir (creating it), reading back what earlier
// runs kept there.
func Open(opts Options) (*Log, error) {
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = DefaultMaxBytes
	}
	if opts.MaxEvents <= 0 {
		opts.MaxEvents = DefaultMaxEvents
	}
	if opts.Burst <= 0 {
		opts.Burst = DefaultBurst
	}
	if opts.Window <= 0 {
		opts.Window = DefaultWindow
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	l := &Log{opts: opts, log: log, nextSeq: 1, counts: map[ID]uint64{}, limits: map[ID]*limit{}}
	if opts.Dir == "" {
		return l, nil
	}
	if err := l.load(); err != nil {
		return nil, err
	}
	ring, err := logging.OpenRing(opts.Dir, opts.MaxBytes)
	if err != nil {
		return nil, fmt.Errorf("events: %w", err)
	}
	l.ring = ring
	return l, nil
}

// load reads back the events kept in Dir. A line that does not parse (the
// last one, cut by a power failure) is skipped.
func (l *Log) load() error {
	lines, err := logging.ReadRing(l.opts.Dir, 0)
	if err != nil {
		return fmt.Errorf("events: %w", err)
	}
	skipped := 0
	for _, line := range lines {
		var ev Event
		if err := json.Unmarshal(line, &ev); err != nil || ev.Seq == 0 {
			skipped++
			continue
		}
		l.append(ev)
		l.nextSeq = max(l.nextSeq, ev.Seq+1)
	}
	if skipped > 0 {
		l.log.Warn("events: skipped unreadable records", "dir", l.opts.Dir, "count", skipped)
	}
	return nil
}

func (l *Log) append(ev Event) {
	if len(l.events) >= l.opts.MaxEvents {
		// Drop the oldest quarter at once so appending stays cheap.
		n := copy(l.events, l.events[len(l.events)-l.opts.MaxEvents*3/4:])
		clear(l.events[n:])
		l.events = l.events[:n]
	}
	l.events = append(l.events, ev)
}

// Log records an event of kind id with its details. Past the burst of its
// ID in the current window it is only counted (see Options.Burst).
func (l *Log) Log(id ID, fields Fields) {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	l.counts[id]++
	if id != Suppressed && !l.admit(id) {
		return
	}
	l.write(id, fields)
}

// write records an event; l.mu is held.
func (l *Log) write(id ID, fields Fields) {
	def := Lookup(id)
	ev := Event{
		Seq: l.nextSeq, ID: id, Name: def.Name, Level: def.Level,
		Time: l.opts.Now().UTC(), Message: message(def.Summary, fields), Fields: fields,
	}
	l.nextSeq++
	l.append(ev)
	l.log.Log(context.Background(), slogLevel(def.Level), "event "+ev.Message, "event_id", int(id), "event_seq", ev.Seq)
	if l.ring == nil {
		return
	}
	line, err := json.Marshal(ev)
	if err == nil {
		_, err = l.ring.Write(append(line, '\n'))
	}
	if err != nil {
		// Kept in memory all the same; say so once, not per event.
		if l.diskErrs++; l.diskErrs == 1 {
			l.log.Error("events: cannot write the event log; events are kept in memory only", "dir", l.opts.Dir, "err", err)
		}
		return
	}
	// Events are rare (and bounded by the burst limit): each is worth a
	// sync, so that a power cut right after a failure keeps its event.
	l.ring.Sync()
}

func slogLevel(l Level) slog.Level {
	switch l {
	case Error:
		return slog.LevelError
	case Warning:
		return slog.LevelWarn
	}
	return slog.LevelInfo
}

// Counts returns how often each ID occurred since Open, suppressed
// occurrences included (for metrics).
func (l *Log) Counts() map[ID]uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[ID]uint64, len(l.counts))
	for id, n := range l.counts {
		out[id] = n
	}
	return out
}

// Close writes the summaries of suppressed events still pending and
// closes the files; later events are dropped.
func (l *Log) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.flushAllSuppressed()
	l.closed = true
	if l.ring == nil {
		return nil
	}
	if err := l.ring.Close(); err != nil {
		return fmt.Errorf("events: %w", err)
	}
	return nil
}
