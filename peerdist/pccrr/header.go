package pccrr

import (
	"encoding/binary"
	"fmt"
)

// Path is the URL path of the retrieval endpoint (HTTP POST, port 80 unless
// configured). http.sys matches it case-insensitively.
const Path = "/116B50EB-ECE2-41ac-8429-9F9E963361B7/"

// Size limits of MsgSize (MESSAGE_HEADER included, transport header
// excluded), protocols.md §3.2. Responses may be 384 KiB although the spec's
// transport header text says 96 KiB: a V2 segment is up to 128 KiB
// (protocols.md §9 row 9).
const (
	HeaderSize          = 16     // MESSAGE_HEADER
	TransportHeaderSize = 4      // TRANSPORT_RESPONSE_HEADER, responses only
	MaxRequestSize      = 98304  // 96 KiB
	MaxResponseSize     = 393216 // 384 KiB
)

// ProtVer is a protocol version. On the wire it is the minor version as a
// big-endian 16-bit value followed by the major version, so 1.0 is
// 00 00 00 01.
type ProtVer struct {
	Major, Minor uint16
}

// The major versions this package speaks (1.0 and 2.0 messages). Only
// majors matter for compatibility (protocols.md §3.5).
const (
	MinMajor = 1
	MaxMajor = 2
)

func (v ProtVer) String() string { return fmt.Sprintf("%d.%d", v.Major, v.Minor) }

// Supported reports whether the major version is one we speak.
func (v ProtVer) Supported() bool {
	return v.Major >= MinMajor && v.Major <= MaxMajor
}

func (v ProtVer) wire() uint32 { return uint32(v.Minor)<<16 | uint32(v.Major) }

func protVer(w uint32) ProtVer { return ProtVer{Major: uint16(w), Minor: uint16(w >> 16)} }

// MsgType is the MESSAGE_HEADER MsgType.
type MsgType uint32

// Message types (see IsResponse for which way each goes).
const (
	MsgNegoReq    MsgType = 0
	MsgNegoResp   MsgType = 1
	MsgGetBlkList MsgType = 2
	MsgGetBlks    MsgType = 3
	MsgBlkList    MsgType = 4
	MsgBlk        MsgType = 5
	MsgGetSegList MsgType = 6
	MsgSegList    MsgType = 7
)

func (t MsgType) String() string {
	switch t {
	case MsgNegoReq:
		return "MSG_NEGO_REQ"
	case MsgNegoResp:
		return "MSG_NEGO_RESP"
	case MsgGetBlkList:
		return "MSG_GETBLKLIST"
	case MsgGetBlks:
		return "MSG_GETBLKS"
	case MsgBlkList:
		return "MSG_BLKLIST"
	case MsgBlk:
		return "MSG_BLK"
	case MsgGetSegList:
		return "MSG_GETSEGLIST"
	case MsgSegList:
		return "MSG_SEGLIST"
	}
	return fmt.Sprintf("MsgType(%d)", uint32(t))
}

// Known reports whether t is one of the eight defined types.
func (t MsgType) Known() bool { return t <= MsgSegList }

// IsResponse reports whether t is sent by the server (and so carries the
// transport header).
func (t MsgType) IsResponse() bool {
	switch t {
	case MsgNegoResp, MsgBlkList, MsgBlk, MsgSegList:
		return true
	}
	return false
}

// VersionFor is the ProtVer a message of type t carries: it is fixed by the
// type, not by what the sender supports (protocols.md §3.3). GETSEGLIST and
// SEGLIST are 2.0; everything else, MSG_GETBLKS for V2 content included, is
// 1.0. Encoders always write this value.
func VersionFor(t MsgType) ProtVer {
	if t == MsgGetSegList || t == MsgSegList {
		return ProtVer{Major: 2}
	}
	return ProtVer{Major: 1}
}

// CryptoAlgo is the MESSAGE_HEADER CryptoAlgoId. In a request it is only the
// client's preference; in MSG_BLK it says how that block was encrypted.
type CryptoAlgo uint32

// The defined algorithms; all AES ones are CBC.
const (
	CryptoNone   CryptoAlgo = 0
	CryptoAES128 CryptoAlgo = 1
	CryptoAES192 CryptoAlgo = 2
	CryptoAES256 CryptoAlgo = 3
)

// Valid reports whether c is one of the four defined values.
func (c CryptoAlgo) Valid() bool { return c <= CryptoAES256 }

// KeyLen is the AES key length in bytes (0 for none and unknown values).
func (c CryptoAlgo) KeyLen() int {
	switch c {
	case CryptoAES128:
		return 16
	case CryptoAES192:
		return 24
	case CryptoAES256:
		return 32
	}
	return 0
}

func (c CryptoAlgo) String() string {
	switch c {
	case CryptoNone:
		return "NONE"
	case CryptoAES128:
		return "AES_128"
	case CryptoAES192:
		return "AES_192"
	case CryptoAES256:
		return "AES_256"
	}
	return fmt.Sprintf("CryptoAlgo(%d)", uint32(c))
}

// Header is the 16-byte MESSAGE_HEADER. Size is MsgSize: the whole message
// including this header, excluding the transport header.
type Header struct {
	Version ProtVer
	Type    MsgType
	Size    uint32
	Crypto  CryptoAlgo
}

// ParseHeader decodes the first 16 bytes of b as a MESSAGE_HEADER without
// judging any field.
func ParseHeader(b []byte) (Header, error) {
	if len(b) < HeaderSize {
		return Header{}, malformed("pccrr: header: %d bytes, need %d", len(b), HeaderSize)
	}
	return Header{
		Version: protVer(binary.BigEndian.Uint32(b)),
		Type:    MsgType(binary.BigEndian.Uint32(b[4:])),
		Size:    binary.BigEndian.Uint32(b[8:]),
		Crypto:  CryptoAlgo(binary.BigEndian.Uint32(b[12:])),
	}, nil
}

// AppendTo appends the 16-byte wire form of h.
func (h Header) AppendTo(dst []byte) []byte {
	dst = appendU32(dst, h.Version.wire())
	dst = appendU32(dst, uint32(h.Type))
	dst = appendU32(dst, h.Size)
	return appendU32(dst, uint32(h.Crypto))
}

// VersionError reports a message whose major version we do not speak. A
// server answers such a request with MSG_NEGO_RESP instead of HTTP 400
// (protocols.md §3.5); the client then retries in a common version.
type VersionError struct {
	Header Header
}

func (e *VersionError) Error() string {
	return fmt.Sprintf("pccrr: %v: unsupported protocol version %v (we speak majors %d-%d)",
		e.Header.Type, e.Header.Version, MinMajor, MaxMajor)
}

// checkHeader judges a header whose Size already matches the input length.
//
// How strict about ProtVer (protocols.md §3.3 says it is fixed by the
// type): minor versions never matter, and for the NEGO pair the header
// version is ignored, because negotiation is exactly what a peer in another
// version must still be able to do (the MS test suite even answers NEGO with
// 0.0). Any other message must have a major we speak (1 or 2), else it is a
// *VersionError, whatever its type: a future major may define new types, and
// NEGO_RESP is the useful answer to it. A supported major that is not the
// type's own (say MSG_GETBLKS marked 2.0, from a client that stamps its
// negotiated version everywhere) is accepted: the layout does not depend on
// it, and refusing it would make such a client loop on NEGO_RESP.
//
// CryptoAlgoId above 3 is malformed even in a request, where it is only a
// preference that a lenient server could ignore: every real client sends 0-3
// (Windows and iPXE send 1), the field has a fixed meaning in every version,
// so another value means a corrupt or non-PCCRR body, which §3.1 says to
// discard; and refusing it keeps our replies, which echo the preference,
// from ever carrying an undefined algorithm.
func checkHeader(h Header, wantResponse bool) error {
	nego := MsgNegoReq
	if wantResponse {
		nego = MsgNegoResp
	}
	if h.Type != nego && !h.Version.Supported() {
		return &VersionError{Header: h}
	}
	if !h.Type.Known() {
		return malformed("pccrr: unknown %v", h.Type)
	}
	if h.Type.IsResponse() != wantResponse {
		if wantResponse {
			return malformed("pccrr: %v is a request, expected a response", h.Type)
		}
		return malformed("pccrr: %v is a response, expected a request", h.Type)
	}
	if !h.Crypto.Valid() {
		return malformed("pccrr: %v: unknown %v", h.Type, h.Crypto)
	}
	return nil
}
