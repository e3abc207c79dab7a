package discovery

import "sync/atomic"

// InterfaceStats are one interface's discovery counters since the service
// started.
type InterfaceStats struct {
	Interface string `json:"interface"`
	// ProbesSeen counts datagrams received on UDP 3702, and probes the
	// XDP fast path handed over (Captured).
	ProbesSeen uint64 `json:"probes_seen"`
	// Captured counts probes the XDP fast path decoded and handed over
	// (they never reached the socket).
	Captured uint64 `json:"captured"`
	// ProbesAnswered counts ProbeMatches sent (locally held or relayed).
	ProbesAnswered uint64 `json:"probes_answered"`
	// ProbesForwarded counts probes handed to the peer leaders.
	ProbesForwarded uint64 `json:"probes_forwarded"`
	// ProbesDropped is the sum of the drop reasons below.
	ProbesDropped uint64 `json:"probes_dropped"`
	RateLimited   uint64 `json:"rate_limited"` // over the per-source rate
	Overloaded    uint64 `json:"overloaded"`   // the work queue was full
	Malformed     uint64 `json:"malformed"`    // broken PeerDist probes
	Duplicates    uint64 `json:"duplicates"`   // MessageID already handled
	// NotPeerDist counts other WS-Discovery traffic (printers, Hello).
	NotPeerDist uint64 `json:"not_peerdist"`
	// Silent counts valid probes for segments held nowhere known and not
	// forwarded: no answer, as a Windows peer does.
	Silent uint64 `json:"silent"`
}

type ifaceCounters struct {
	seen, captured, answered, forwarded, rateLimited, overloaded, malformed, duplicates, notPeerDist, silent atomic.Uint64
}

func (c *ifaceCounters) snapshot(name string) InterfaceStats {
	s := InterfaceStats{
		Interface:       name,
		ProbesSeen:      c.seen.Load(),
		Captured:        c.captured.Load(),
		ProbesAnswered:  c.answered.Load(),
		ProbesForwarded: c.forwarded.Load(),
		RateLimited:     c.rateLimited.Load(),
		Overloaded:      c.overloaded.Load(),
		Malformed:       c.malformed.Load(),
		Duplicates:      c.duplicates.Load(),
		NotPeerDist:     c.notPeerDist.Load(),
		Silent:          c.silent.Load(),
	}
	s.ProbesDropped = s.RateLimited + s.Overloaded + s.Malformed + s.Duplicates
	return s
}
