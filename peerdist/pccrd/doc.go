// Package pccrd is the wire format of MS-PCCRD, BranchCache content
// discovery over WS-Discovery (April 2005) and SOAP-over-UDP: it parses and
// marshals the Probe a client multicasts for the segments it wants and the
// ProbeMatch a peer or subnet leader unicasts back, for V1 (hex segment IDs,
// block counts) and V2 (base64 segment IDs, availability bits, segment ages)
// content. It does no network I/O.
//
// Decoding is namespace-aware (prefixes are free, namespace URIs are fixed),
// lenient where the specification is ambiguous and bounded in work and
// memory, because every datagram on UDP 3702 is untrusted. Encoding uses a
// fixed template, byte-for-byte stable, that also meets the literal-string
// checks of iPXE's PeerDist client (docs/protocols.md §10): exactly the
// prefixes soap, wsa, wsd and PeerDist, and no attributes on wsd:Scopes,
// wsd:XAddrs and PeerDist:BlockCount.
//
// Errors wrap [ErrMalformed] when a datagram is broken or a PeerDist message
// is invalid (a responder drops it silently, MS-PCCRD §3.2.4.1) and
// [ErrNotPeerDist] when it is well-formed XML that is simply some other
// WS-Discovery traffic (printers, Hello, Bye), which a responder ignores.
package pccrd
