package report

import "time"

// Leaders is GET /api/v1/leaders: the peer leaders this box forwards
// discovery to and relays from (issue 5).
type Leaders struct {
	// Running: the leader service exists and runs. Until it does, the
	// report is this empty form.
	Running bool `json:"running"`
	// Forwarding: probes for content not held here go to the peers.
	Forwarding bool         `json:"forwarding"`
	Peers      []LeaderPeer `json:"peers"`
	// Totals sums the peers' counters.
	Totals LeaderCounters `json:"totals"`
	// UnknownSourceAuthFailures counts forwarded messages from addresses
	// that are no configured peer and failed authentication.
	UnknownSourceAuthFailures uint64 `json:"unknown_source_auth_failures"`
}

// LeaderPeer is one peer leader.
type LeaderPeer struct {
	Name    string `json:"name"`
	Address string `json:"address"`
	// State, from the leader protocol's keepalives: "reachable" (it
	// answers), "unreachable" (it left the last keepalives unanswered;
	// Reason says how) or "unknown" (not yet either), since StateSince.
	State       string    `json:"state"`
	StateSince  time.Time `json:"state_since,omitzero"`
	Reason      string    `json:"reason,omitempty"`
	LastContact time.Time `json:"last_contact,omitzero"`
	LeaderCounters
}

// Leader peer states.
const (
	PeerReachable   = "reachable"
	PeerUnreachable = "unreachable"
	PeerUnknown     = "unknown"
)

// LeaderCounters are one peer's counters (or their sum).
type LeaderCounters struct {
	ForwardsSent     uint64 `json:"forwards_sent"`     // probes forwarded to the peer
	ForwardsReceived uint64 `json:"forwards_received"` // probes the peer forwarded here
	Matches          uint64 `json:"matches"`           // segments the peer's subnet had
	RelayBytes       uint64 `json:"relay_bytes"`       // block bytes relayed from the peer's subnet
	AuthFailures     uint64 `json:"auth_failures"`     // its messages that failed authentication
}

func (c *LeaderCounters) add(o LeaderCounters) {
	c.ForwardsSent += o.ForwardsSent
	c.ForwardsReceived += o.ForwardsReceived
	c.Matches += o.Matches
	c.RelayBytes += o.RelayBytes
	c.AuthFailures += o.AuthFailures
}

// Discovery is GET /api/v1/discovery: WS-Discovery probes and the XDP
// fast path (issues 5 and 10).
type Discovery struct {
	// Running: the discovery responder exists and runs.
	Running bool `json:"running"`
	// Totals over the interfaces.
	DiscoveryCounters
	// Dropped and XDPDropped sum the interfaces' drops by reason.
	Dropped    map[string]uint64    `json:"dropped"`
	XDPDropped map[string]uint64    `json:"xdp_dropped"`
	Interfaces []DiscoveryInterface `json:"interfaces"`
}

// DiscoveryCounters count probes.
type DiscoveryCounters struct {
	ProbesSeen uint64 `json:"probes_seen"`
	Answered   uint64 `json:"answered"`  // answered from the store
	Forwarded  uint64 `json:"forwarded"` // sent on to the peer leaders
}

// DiscoveryInterface is discovery on one interface.
type DiscoveryInterface struct {
	Name string `json:"name"`
	// XDPMode: "native", "generic" or "off" (the socket path only).
	XDPMode string `json:"xdp_mode"`
	DiscoveryCounters
	// Dropped counts probes the responder dropped on the socket path, by
	// reason ("rate-limit", "overloaded", "malformed", "duplicate").
	Dropped map[string]uint64 `json:"dropped"`
	// XDPDropped counts probes the XDP program dropped, by reason
	// ("rate-limit", "not-held", …).
	XDPDropped map[string]uint64 `json:"xdp_dropped"`
	// XDPCounters are all the XDP program's outcome counters on the
	// interface ("captured", "pass-v2", "drop-not-held", …; see
	// ebpf/probexdp), absent when it never ran there.
	XDPCounters map[string]uint64 `json:"xdp_counters,omitempty"`
	// XDPError says why the XDP program does not run on the interface.
	XDPError string `json:"xdp_error,omitempty"`
}
