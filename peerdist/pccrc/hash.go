// Package pccrc implements MS-PCCRC, BranchCache content information: the
// per-file list of segment hashes and secrets that a content server hands a
// client and that every peer and hosted cache keys its data by. It parses and
// marshals Content Information 1.0 and 2.0, derives the keys (Ks, Kp, segment
// ID = HoHoDk), generates content information for data, restricts it to a
// byte range, and verifies data against it. It does no I/O of its own.
package pccrc

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"fmt"
	"hash"
)

// HashAlgo is the hash function of a piece of content information. V1
// content uses SHA-256 (Windows' default), SHA-384 or SHA-512; V2 content
// always uses truncated SHA-512: SHA-512 whose output is cut to 32 bytes.
type HashAlgo int

// The hash algorithms of MS-PCCRC.
const (
	SHA256 HashAlgo = iota + 1
	SHA384
	SHA512
	TruncatedSHA512
)

// Wire codes of the hash algorithms (V1 dwHashAlgo, V2 bHashAlgo).
const (
	wireSHA256          uint32 = 0x800C
	wireSHA384          uint32 = 0x800D
	wireSHA512          uint32 = 0x800E
	wireTruncatedSHA512 uint8  = 0x04
)

func (a HashAlgo) String() string {
	switch a {
	case SHA256:
		return "SHA-256"
	case SHA384:
		return "SHA-384"
	case SHA512:
		return "SHA-512"
	case TruncatedSHA512:
		return "SHA-512/trunc32"
	}
	return fmt.Sprintf("HashAlgo(%d)", int(a))
}

// Size is the length in bytes of every hash, key and segment ID of this
// algorithm.
func (a HashAlgo) Size() int {
	switch a {
	case SHA256, TruncatedSHA512:
		return 32
	case SHA384:
		return 48
	case SHA512:
		return 64
	}
	return 0
}

// New returns the underlying hash function (for TruncatedSHA512 the full
// SHA-512; callers keep the first Size bytes of its sum).
func (a HashAlgo) New() hash.Hash {
	switch a {
	case SHA256:
		return sha256.New()
	case SHA384:
		return sha512.New384()
	case SHA512, TruncatedSHA512:
		return sha512.New()
	}
	panic(fmt.Sprintf("pccrc: unknown hash algorithm %d", int(a)))
}

func (a HashAlgo) valid() bool { return a >= SHA256 && a <= TruncatedSHA512 }

// Sum hashes data (truncated to Size).
func (a HashAlgo) Sum(data []byte) []byte {
	h := a.New()
	h.Write(data)
	return h.Sum(nil)[:a.Size()]
}

// HMAC computes HMAC with this hash over the concatenated parts. For V2 the
// HMAC runs on the full SHA-512 and only its output is truncated: iPXE calls
// this "totally undocumented", and real IIS output confirms it.
func (a HashAlgo) HMAC(key []byte, parts ...[]byte) []byte {
	mac := hmac.New(a.New, key)
	for _, p := range parts {
		mac.Write(p)
	}
	return mac.Sum(nil)[:a.Size()]
}

// C2 is the constant that turns a segment's HoD and Kp into its public ID:
// UTF-16LE "MS_P2P_CACHING" and a two-byte NUL, 30 bytes. The spec text
// calls it a null-terminated ASCII string, which is wrong (protocols.md §9
// row 2): only the UTF-16LE form reproduces real IIS segment IDs.
var c2 = [30]byte{
	'M', 0, 'S', 0, '_', 0, 'P', 0, '2', 0, 'P', 0, '_', 0,
	'C', 0, 'A', 0, 'C', 0, 'H', 0, 'I', 0, 'N', 0, 'G', 0, 0, 0,
}

// C2 returns a copy of the segment-ID constant.
func C2() []byte { c := c2; return c[:] }

// ServerKey derives Ks, the key of all segment secrets, from the content
// server's secret: Ks = H(secret).
func (a HashAlgo) ServerKey(serverSecret []byte) []byte { return a.Sum(serverSecret) }

// SegmentSecret derives Kp = HMAC(Ks, HoD). The spec's field text
// "Hash(HoD + ServerSecret)" is wrong (protocols.md §9 row 1).
func (a HashAlgo) SegmentSecret(serverKey, hashOfData []byte) []byte {
	return a.HMAC(serverKey, hashOfData)
}

// SegmentID derives the public segment identifier HoHoDk = HMAC(Kp, HoD ‖ C2).
func (a HashAlgo) SegmentID(segmentSecret, hashOfData []byte) []byte {
	return a.HMAC(segmentSecret, hashOfData, c2[:])
}
