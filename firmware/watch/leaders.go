package watch

import (
	"github.com/outpost-appliance/outpost/firmware/events"
	"github.com/outpost-appliance/outpost/firmware/report"
)

// unknownSource names forwarded messages from no configured peer.
const unknownSource = "(not a configured peer)"

// checkLeaders logs LeaderAuthFailed for each growth of a peer's
// authentication failures (forged, replayed or stale forwards).
func (w *watcher) checkLeaders(l report.Leaders) {
	first := w.leaderAuth == nil
	if first {
		w.leaderAuth = map[string]uint64{}
	}
	note := func(peer, address string, n uint64) {
		key := peer + "\x00" + address
		// A smaller count is the leader service restarting: no news.
		if prev := w.leaderAuth[key]; n > prev && !first {
			w.opts.Events.Log(events.LeaderAuthFailed, events.Fields{"peer": peer, "address": address, "count": n - prev})
		}
		w.leaderAuth[key] = n
	}
	for _, p := range l.Peers {
		note(p.Name, p.Address, p.AuthFailures)
	}
	note(unknownSource, "", l.UnknownSourceAuthFailures)
}
