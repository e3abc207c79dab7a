// Package probexdp is Outpost's XDP fast path for PeerDist discovery: an
// XDP program (probe.c, compiled with bpf2go; the object and its bindings
// are committed) that sees UDP 3702 on every LAN interface before the
// network stack, and the Go side that loads it, attaches it, keeps its
// maps current and reads what it captures.
//
// The program consumes only PeerDist V1 probes that it decodes with
// certainty (a fixed template; see probe.c). Everything else — other
// WS-Discovery traffic, V2 probes, layouts it does not know, fragments,
// anything truncated or odd — passes untouched to the socket path, which
// answers exactly as it would without XDP. Of the probes it consumes, those
// over the per-source rate and those for segments held nowhere known (with
// forwarding off) are dropped and counted; the rest reach the leader as
// compact events on a ring buffer (Probe) and are dropped from the stack,
// so the responder answers them without reading a socket or parsing XML.
//
// The held map follows the segment store's change feed (SyncHeld), the
// peer map the leader's table of segments other subnets hold (SyncPeers).
// Until a map is in sync the program treats every probe as possibly held
// and hands it to the leader: a probe is only ever dropped when the socket
// path would not have answered it either.
//
// VLANs: a probe tagged for a VLAN belongs to the VLAN's interface and
// subnet, which only that interface's device can tell for sure (a NIC
// that strips tags in hardware hides them from a program on the parent).
// So the program passes tagged discovery traffic, and the Manager
// attaches to served VLAN interfaces (generic mode: the stack hands them
// their frames untagged) but not to their trunk port, whose own untagged
// subnet, if served, then uses the socket path.
//
// Attach tries native mode where the driver supports it, then generic
// mode; where neither works, discovery runs on the socket path alone and
// the interface shows mode "off" (Manager). Nothing here ever stops the
// leader from serving.
//
// The loader never uses cilium/ebpf's rlimit package: outpost runs as PID
// 1, and that package probes /proc in its init, before /proc is mounted.
// Load raises RLIMIT_MEMLOCK itself (needed only before Linux 5.11).
package probexdp
