package events

import "time"

// limit is the burst accounting of one ID in its current window.
type limit struct {
	start      time.Time
	logged     int
	suppressed int
	timer      *time.Timer
}

// admit reports whether an event of id may be written now; if not, it is
// counted for the window's Suppressed summary. l.mu is held.
func (l *Log) admit(id ID) bool {
	now := l.opts.Now()
	lim := l.limits[id]
	if lim == nil || now.Sub(lim.start) >= l.opts.Window {
		if lim != nil && lim.suppressed > 0 {
			l.flushSuppressed(id, lim)
		}
		lim = &limit{start: now}
		l.limits[id] = lim
	}
	if lim.logged < l.opts.Burst {
		lim.logged++
		return true
	}
	lim.suppressed++
	if lim.timer == nil {
		// The summary comes at the window's end even if no later event
		// of this ID does.
		lim.timer = time.AfterFunc(lim.start.Add(l.opts.Window).Sub(now), func() {
			l.mu.Lock()
			defer l.mu.Unlock()
			if !l.closed && l.limits[id] == lim {
				l.flushSuppressed(id, lim)
			}
		})
	}
	return false
}

// flushSuppressed writes the Suppressed summary of one window. l.mu is
// held.
func (l *Log) flushSuppressed(id ID, lim *limit) {
	if lim.timer != nil {
		lim.timer.Stop()
		lim.timer = nil
	}
	if lim.suppressed == 0 {
		return
	}
	n := lim.suppressed
	lim.suppressed = 0
	l.write(Suppressed, Fields{
		"event_id":   int(id),
		"event_name": Lookup(id).Name,
		"count":      n,
		"window":     l.opts.Window.String(),
	})
}

func (l *Log) flushAllSuppressed() {
	for id, lim := range l.limits {
		l.flushSuppressed(id, lim)
	}
}
