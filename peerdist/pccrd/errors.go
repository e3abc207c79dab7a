package pccrd

import "errors"

// ErrMalformed reports a datagram that is not well-formed, exceeds a limit,
// or claims to be a PeerDist message but has missing or invalid fields. A
// responder drops such probes silently (MS-PCCRD §3.2.4.1).
var ErrMalformed = errors.New("malformed PeerDist discovery message")

// ErrNotPeerDist reports well-formed XML that is not a PeerDist Probe or
// ProbeMatch: another service's WS-Discovery probe, a Hello or Bye, a
// WS-Discovery 1.1 message. It is normal traffic on UDP 3702 and is to be
// ignored quietly, unlike ErrMalformed.
var ErrNotPeerDist = errors.New("not a PeerDist discovery message")

// ErrTooLarge reports that Marshal would produce more than MaxDatagramSize
// bytes; the caller has to split the segments over several messages.
var ErrTooLarge = errors.New("PeerDist discovery message exceeds the UDP payload limit")
