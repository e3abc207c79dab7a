// Package pchc encodes and decodes the MS-PCHC hosted-cache offer messages:
// the INITIAL_OFFER, SEGMENT_INFO and BATCHED_OFFER requests a BranchCache
// client POSTs to a hosted cache, and the one-byte response the hosted cache
// returns. It is the wire format only; it does no I/O.
//
// All PCHC integers are big-endian. The specification never says so; the
// Microsoft conformance suite encodes and decodes them big-endian in both
// directions (protocols.md §4.2, §9 row 14). The content information carried
// inside SEGMENT_INFO stays little-endian PCCRC 1.0 and is kept here as raw
// bytes for the pccrc package to parse.
//
// Decoded byte slices (hashes, content tags, segment information) alias the
// input buffer: copy them if the buffer is reused. Decoders never panic and
// allocate at most a small constant per batched-offer descriptor, so a body
// capped at MaxMessageSize bounds their memory.
package pchc
