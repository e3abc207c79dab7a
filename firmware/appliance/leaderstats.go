package appliance

import (
	"time"

	"github.com/outpost-appliance/outpost/firmware/config"
	"github.com/outpost-appliance/outpost/firmware/events"
	"github.com/outpost-appliance/outpost/firmware/report"
	"github.com/outpost-appliance/outpost/firmware/supervise"
	"github.com/outpost-appliance/outpost/leader/forward"
	leader "github.com/outpost-appliance/outpost/leader/service"
)

// peerEvents logs peer leaders going unreachable (event 130) and, after
// that, reachable again (event 131); the first contact at start-up is no
// news.
func peerEvents(evlog *events.Log) func(forward.PeerChange) {
	return func(c forward.PeerChange) {
		switch {
		case c.State == forward.PeerUnreachable:
			evlog.Log(events.LeaderUnreachable, events.Fields{"peer": c.Name, "address": c.Address, "error": c.Reason})
		case c.State == forward.PeerReachable && c.From == forward.PeerUnreachable:
			evlog.Log(events.LeaderReachable, events.Fields{"peer": c.Name, "address": c.Address,
				"down_for": config.FormatDuration(c.DownFor.Round(time.Second))})
		}
	}
}

// leaderReport shows the leader service's counters in the management
// API's shapes (report.LeaderStats and report.DiscoveryStats).
type leaderReport struct {
	svc     *leader.Service
	sup     interface{ Snapshot() []supervise.Status }
	forward bool
}

func (l leaderReport) running() bool {
	for _, s := range l.sup.Snapshot() {
		if s.Name == l.svc.Name() {
			return s.State == supervise.Running
		}
	}
	return false
}

// Leaders implements report.LeaderStats.
func (l leaderReport) Leaders() report.Leaders {
	st := l.svc.Stats()
	out := report.Leaders{Running: l.running(), Forwarding: l.forward && st.Forwarding != nil}
	if st.Forwarding == nil {
		return out
	}
	for _, p := range st.Forwarding.Leaders {
		state := report.PeerUnknown
		switch p.State {
		case forward.PeerReachable:
			state = report.PeerReachable
		case forward.PeerUnreachable:
			state = report.PeerUnreachable
		}
		out.Peers = append(out.Peers, report.LeaderPeer{
			Name: p.Name, Address: p.Address, State: state, StateSince: p.StateSince, Reason: p.Reason,
			LastContact: p.LastContact,
			LeaderCounters: report.LeaderCounters{
				ForwardsSent: p.ForwardsSent, ForwardsReceived: p.ForwardsReceived, Matches: p.MatchesReceived,
				RelayBytes: p.RelayBytes, AuthFailures: p.AuthFailures + p.Rejected,
			},
		})
	}
	out.UnknownSourceAuthFailures = st.Forwarding.UnknownSources
	return out
}

// Discovery implements report.DiscoveryStats: the responder's counters
// with, per interface, the XDP fast path's mode and counters. Probes the
// fast path dropped never reached the responder; they count as seen.
func (l leaderReport) Discovery() report.Discovery {
	st := l.svc.Stats()
	d := report.Discovery{Running: l.running()}
	for _, i := range st.Interfaces {
		x, ok := st.XDP[i.Interface]
		mode := string(x.Mode)
		if mode == "" {
			mode = "off"
		}
		di := report.DiscoveryInterface{
			Name: i.Interface, XDPMode: mode, XDPError: x.Error,
			DiscoveryCounters: report.DiscoveryCounters{
				ProbesSeen: i.ProbesSeen + x.Counters.DropNotHeld + x.Counters.DropRateLimit,
				Answered:   i.ProbesAnswered, Forwarded: i.ProbesForwarded,
			},
			Dropped: map[string]uint64{
				"rate-limit": i.RateLimited, "overloaded": i.Overloaded, "malformed": i.Malformed, "duplicate": i.Duplicates,
			},
			XDPDropped: x.Counters.Dropped(),
		}
		if ok {
			di.XDPCounters = x.Counters.Map()
		}
		if di.XDPError == "" && st.XDPError != "" {
			di.XDPError = st.XDPError
		}
		d.Interfaces = append(d.Interfaces, di)
	}
	return d
}
