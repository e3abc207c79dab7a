package pccrr

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// ErrMalformed is wrapped by every error about bytes that do not form a
// valid message. A server answers such a request with HTTP 400 and never
// with a PCCRR message (protocols.md §3.1).
var ErrMalformed = errors.New("malformed message")

func malformed(format string, args ...any) error {
	return fmt.Errorf(format+": %w", append(args, ErrMalformed)...)
}

// padLen is the ZeroPad needed after n bytes to get back to a multiple of
// four. Every variable field starts 4-aligned (it follows a DWORD size at an
// aligned offset), so the field length alone decides the pad.
func padLen(n int) int { return -n & 3 }

func appendU32(dst []byte, v uint32) []byte { return binary.BigEndian.AppendUint32(dst, v) }

func appendPad(dst []byte, n int) []byte {
	for range padLen(n) {
		dst = append(dst, 0)
	}
	return dst
}

// appendPadded appends a DWORD length, the bytes and the ZeroPad.
func appendPadded(dst, field []byte) []byte {
	dst = appendU32(dst, uint32(len(field)))
	dst = append(dst, field...)
	return appendPad(dst, len(field))
}

// appendSized appends a DWORD length and the bytes, with no pad: for the
// fields that end a message.
func appendSized(dst, field []byte) []byte {
	dst = appendU32(dst, uint32(len(field)))
	return append(dst, field...)
}

func appendRanges(dst []byte, rs []BlockRange) []byte {
	dst = appendU32(dst, uint32(len(rs)))
	for _, r := range rs {
		dst = appendU32(dst, r.Index)
		dst = appendU32(dst, r.Count)
	}
	return dst
}

// paddedLen is the wire size of a DWORD length, the field and its ZeroPad.
func paddedLen(field []byte) int { return 4 + len(field) + padLen(len(field)) }

// reader walks one message body. off counts from the start of the
// MESSAGE_HEADER, which is where the alignment rule counts from. The first
// failure sticks, so decoders read straight through and check err once.
type reader struct {
	b   []byte
	off int
	err error
}

func (r *reader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = malformed(format, args...)
	}
}

func (r *reader) remaining() int { return len(r.b) - r.off }

func (r *reader) u32(field string) uint32 { return r.read32(field, "") }

// read32 reads a DWORD named field+suffix. The name is only put together
// when reporting an error, so a message of many fields costs no strings.
func (r *reader) read32(field, suffix string) uint32 {
	if r.err != nil {
		return 0
	}
	if r.remaining() < 4 {
		r.fail("%s%s: need 4 bytes, %d left", field, suffix, r.remaining())
		return 0
	}
	v := binary.BigEndian.Uint32(r.b[r.off:])
	r.off += 4
	return v
}

// bytes returns the next n bytes, aliasing the input (capacity clipped so an
// append by the caller cannot overwrite what follows); nil when n is 0.
func (r *reader) bytes(field string, n uint32) []byte {
	if r.err != nil {
		return nil
	}
	if uint64(n) > uint64(r.remaining()) {
		r.fail("%s: length %d exceeds the %d bytes left", field, n, r.remaining())
		return nil
	}
	if n == 0 {
		return nil
	}
	end := r.off + int(n)
	v := r.b[r.off:end:end]
	r.off = end
	return v
}

// pad skips the ZeroPad after a variable field. Its bytes MUST be zero, but
// nothing depends on them, so they are not checked.
func (r *reader) pad(field string) {
	if r.err != nil {
		return
	}
	n := padLen(r.off)
	if r.remaining() < n {
		r.fail("%s: padding: need %d bytes, %d left", field, n, r.remaining())
		return
	}
	r.off += n
}

// padded reads a DWORD length, that many bytes and the ZeroPad.
func (r *reader) padded(field string) []byte {
	v := r.bytes(field, r.read32(field, " size"))
	r.pad(field)
	return v
}

// sized reads a DWORD length and that many bytes (no pad).
func (r *reader) sized(field string) []byte {
	return r.bytes(field, r.read32(field, " size"))
}

// ranges reads a DWORD count and that many BLOCK_RANGE / SEGMENT_RANGE
// pairs. The count is checked against the bytes left before allocating.
func (r *reader) ranges(field string) []BlockRange {
	n := r.read32(field, " count")
	if r.err != nil {
		return nil
	}
	if uint64(n)*8 > uint64(r.remaining()) {
		r.fail("%s: %d ranges need %d bytes, %d left", field, n, uint64(n)*8, r.remaining())
		return nil
	}
	if n == 0 {
		return nil
	}
	rs := make([]BlockRange, n)
	for i := range rs {
		rs[i].Index = binary.BigEndian.Uint32(r.b[r.off:])
		rs[i].Count = binary.BigEndian.Uint32(r.b[r.off+4:])
		r.off += 8
	}
	return rs
}

// done reports the sticky error, or one for bytes left after the last field.
// Trailing bytes are refused: MsgSize must match the fields exactly.
func (r *reader) done() error {
	if r.err == nil && r.remaining() != 0 {
		r.fail("%d bytes after the last field", r.remaining())
	}
	return r.err
}
