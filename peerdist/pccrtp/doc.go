// Package pccrtp handles the HTTP headers of MS-PCCRTP, the "peerdist"
// content encoding: the X-P2P-PeerDist and X-P2P-PeerDistEx headers, the
// peerdist token of Accept-Encoding, and the decisions built on them. An
// origin server uses it to decide whether to answer with content
// information instead of the content; a client uses it to ask for content
// information and to read the answer. It does no I/O.
//
// Header names are written in Go's canonical form (X-P2p-Peerdist); HTTP
// header names are case-insensitive, and Windows and iPXE compare them so.
package pccrtp
