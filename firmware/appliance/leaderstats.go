package appliance

import (
	"time"

	"github.com/outpost-appliance/outpost/firmware/report"
	"github.com/outpost-appliance/outpost/firmware/supervise"
	leader "github.com/outpost-appliance/outpost/leader/service"
)

// quietAfter: a peer leader that sent no authenticated message for this
// long is shown "quiet" rather than "reachable" (the leader protocol has
// no keep-alive, so silence does not prove it down).
const quietAfter = 15 * time.Minute

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
	now := time.Now()
	for _, p := range st.Forwarding.Leaders {
		state := report.PeerUnknown
		switch {
		case p.LastContact.IsZero():
		case now.Sub(p.LastContact) < quietAfter:
			state = report.PeerReachable
		default:
			state = report.PeerQuiet
		}
		out.Peers = append(out.Peers, report.LeaderPeer{
			Name: p.Name, Address: p.Address, State: state, LastContact: p.LastContact,
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
