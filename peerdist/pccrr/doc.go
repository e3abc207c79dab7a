// Package pccrr is the wire format of MS-PCCRR, the BranchCache retrieval
// protocol: it turns the eight PCCRR messages, the 4-byte transport response
// header, the segment-age Extensible Blob and AES-CBC block encryption into
// Go values and back. It does no network I/O; the HTTP server and client
// that move these bytes live elsewhere.
//
// Decoders are written for hostile input: they never panic, check every
// length and count against the bytes left before allocating, and return
// errors wrapping [ErrMalformed] (or a [*VersionError] for a request in a
// major version we do not speak, which a server answers with MSG_NEGO_RESP).
// Byte slices in decoded messages alias the input buffer, so the caller must
// not reuse that buffer while the message is in use. Empty byte fields and
// empty arrays decode as nil.
//
// Encoders validate with the same rules as the decoders, so whatever
// AppendTo accepts, ParseRequest/ParseResponse accept. MSG_BLK can be
// encoded around a stored ciphertext without copying it (see
// [Blk.AppendHead] and [Blk.AppendTail]).
package pccrr
