// Package discovery is the leader's MS-PCCRD responder: it listens on UDP
// 3702 on every configured LAN interface, joined to 239.255.255.250 and
// ff02::c, and answers PeerDist probes for segments held here or, through
// the relay, by peers in other subnets, with a ProbeMatch whose XAddrs is
// the leader's own address on the interface and subnet the probe arrived
// on (protocols.md §5.6). Probes for segments held nowhere known are handed
// to a forwarder; with nothing to say it stays silent, as a Windows peer
// does.
//
// Answers meet protocols.md §5.3–5.5 and §10 (iPXE): V1 echoes the probe's
// tokens with 8-hex-digit block counts, V2 carries the availability bit
// array and SegmentAges; MessageIDs already handled are ignored;
// AppSequence counts every message sent under an instance ID that grows
// with each start; replies wait a random reply delay.
//
// A flood from one source is cut by a per-source token bucket before
// parsing, and a bounded queue sheds what the workers cannot keep up with,
// so one noisy client cannot silence the subnet.
package discovery
