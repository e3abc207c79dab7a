package logging

import (
	"fmt"
	"io"
	"log/slog"
	"sync"

	"github.com/outpost-appliance/outpost/firmware/config"
)

// earlyLimit bounds the records kept in memory before the ring is
// attached (on the appliance, until the data partition is mounted).
const earlyLimit = 1 << 20

// Logs is the process's logging: a logger that writes text to the console
// and JSON lines to the ring, with one level for both.
type Logs struct {
	// Logger is the logger to use (and to make slog's default).
	Logger *slog.Logger
	// Level is the shared level; SetLevel changes it.
	Level *slog.LevelVar
	ring  *deferredWriter
}

// New returns logging to console. Records for the ring are kept in memory
// (up to 1 MiB, then the oldest are dropped) until AttachRing.
func New(console io.Writer) *Logs {
	level := new(slog.LevelVar)
	ring := &deferredWriter{}
	h := slog.NewMultiHandler(
		slog.NewTextHandler(console, &slog.HandlerOptions{Level: level}),
		slog.NewJSONHandler(ring, &slog.HandlerOptions{Level: level}),
	)
	return &Logs{Logger: slog.New(h), Level: level, ring: ring}
}

// SetLevel applies [log] level.
func (l *Logs) SetLevel(level config.LogLevel) {
	l.Level.Set(ParseLevel(level))
}

// ParseLevel maps a configured level to slog's.
func ParseLevel(level config.LogLevel) slog.Level {
	switch level {
	case config.LogDebug:
		return slog.LevelDebug
	case config.LogWarn:
		return slog.LevelWarn
	case config.LogError:
		return slog.LevelError
	}
	return slog.LevelInfo
}

// AttachRing writes the records held in memory to w (the Ring) and sends
// every later record there.
func (l *Logs) AttachRing(w io.Writer) error { return l.ring.attach(w) }

// deferredWriter holds records in memory until a destination is attached.
type deferredWriter struct {
	mu      sync.Mutex
	w       io.Writer
	early   [][]byte
	size    int
	dropped int
}

func (d *deferredWriter) Write(p []byte) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.w != nil {
		return d.w.Write(p)
	}
	d.early = append(d.early, append([]byte(nil), p...))
	d.size += len(p)
	for d.size > earlyLimit && len(d.early) > 1 {
		d.size -= len(d.early[0])
		d.early = d.early[1:]
		d.dropped++
	}
	return len(p), nil
}

func (d *deferredWriter) attach(w io.Writer) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.dropped > 0 {
		fmt.Fprintf(w, `{"level":"WARN","msg":"early log records dropped before the ring was attached","count":%d}`+"\n", d.dropped)
	}
	for _, rec := range d.early {
		if _, err := w.Write(rec); err != nil {
			return fmt.Errorf("logging: attach ring: %w", err)
		}
	}
	d.early, d.size, d.dropped, d.w = nil, 0, 0, w
	return nil
}
