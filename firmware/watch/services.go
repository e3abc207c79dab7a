package watch

import (
	"strings"
	"time"

	"github.com/outpost-appliance/outpost/firmware/config"
	"github.com/outpost-appliance/outpost/firmware/events"
	"github.com/outpost-appliance/outpost/firmware/supervise"
)

// serviceState is what was last seen of a service.
type serviceState struct {
	lastErrorAt time.Time
	downSince   time.Time // zero while it is fine
}

// checkServices logs a ServiceFailed event for each new failure (the
// supervisor records each one's time) and ServiceRecovered when a failed
// service runs again.
func (w *watcher) checkServices(snapshot []supervise.Status) {
	for _, s := range snapshot {
		prev := w.services[s.Name]
		if prev == nil {
			prev = &serviceState{}
			w.services[s.Name] = prev
		}
		if !s.LastErrorAt.IsZero() && s.LastErrorAt.After(prev.lastErrorAt) && s.State != supervise.Running {
			prev.lastErrorAt = s.LastErrorAt
			if prev.downSince.IsZero() {
				prev.downSince = s.LastErrorAt
			}
			lastErr, _, _ := strings.Cut(s.LastError, "\n")
			w.opts.Events.Log(events.ServiceFailed, events.Fields{
				"service": s.Name, "state": string(s.State), "error": lastErr, "restarts": s.Restarts,
			})
		}
		if s.State == supervise.Running && !prev.downSince.IsZero() {
			w.opts.Events.Log(events.ServiceRecovered, events.Fields{
				"service": s.Name, "down_for": config.FormatDuration(s.Since.Sub(prev.downSince).Round(time.Second)),
			})
			prev.downSince = time.Time{}
			prev.lastErrorAt = s.LastErrorAt
		}
	}
}
