// Package forward is how Outpost leaders in different subnets ask each
// other for segments: a compact, versioned, authenticated binary protocol
// on UDP 3704 (requests) and 3705 (replies), documented in
// docs/leader-protocol.md, and the Forwarder that speaks it.
//
// The origin leader forwards a probe its subnet cannot answer to its peer
// leaders (rate-limited, once per MessageID). A peer answers from its own
// store, or re-multicasts the probe into its subnet from UDP 3703, collects
// the ProbeMatches for a bounded window and returns every holder it hears
// of. A forwarded request is never forwarded again, so leaders cannot loop.
// The origin records the holders for the relay and answers its client.
//
// Keepalives (and their acks) on the same ports tell each leader which
// peers are reachable; the Forwarder reports changes through
// Config.OnPeerChange and the state in Stats.
package forward
