package forward

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/outpost-appliance/outpost/peerdist/pccrc"
	"github.com/outpost-appliance/outpost/peerdist/pccrd"
)

// Wire constants (docs/leader-protocol.md).
const (
	Magic       = "OPLF"
	WireVersion = 1

	HeaderSize     = 32
	MACSize        = sha256.Size
	MaxMessageSize = 8192
	// MaxSegments bounds a request's segment IDs and a reply's entries.
	MaxSegments = 64
	// MaxHolders bounds the holders of one reply entry.
	MaxHolders = 4
	// MaxIDSize is the largest segment ID (SHA-512 HoHoDk).
	MaxIDSize = 64
	// MaxMessageIDSize bounds the probe MessageID carried.
	MaxMessageIDSize = 255
)

// Errors of Open; a receiver counts them by kind.
var (
	ErrMalformed = errors.New("forward: malformed message")
	ErrVersion   = errors.New("forward: unsupported protocol version")
	ErrAuth      = errors.New("forward: authentication failed")
	ErrStale     = errors.New("forward: timestamp outside the replay window")
	ErrReplayed  = errors.New("forward: nonce already seen")
)

// Type is the message type.
type Type uint8

// Message types.
const (
	TypeRequest      Type = 1 // "who holds these segments?", to UDP 3704
	TypeReply        Type = 2 // holders found, to UDP 3705
	TypeKeepalive    Type = 3 // "are you there?", to UDP 3704; empty body
	TypeKeepaliveAck Type = 4 // "here", to UDP 3705; the keepalive's nonce
)

// Request asks a peer leader about segments a client probed for.
type Request struct {
	// MessageID is the client probe's; the re-multicast probe reuses it
	// and replies quote it.
	MessageID  string
	Version    pccrd.Version
	SegmentIDs [][]byte
}

// Entry is one segment a peer leader found, and where.
type Entry struct {
	SegmentID []byte
	// Version and Size are 0 when unknown (a client's ProbeMatch says
	// neither; the leader's own store knows both).
	Version  pccrc.Version
	Size     uint32
	Complete bool
	// Blocks held (V1 BlockCount); 0 when unknown.
	Blocks uint16
	// Holders are MS-PCCRR endpoints. An unspecified address (0.0.0.0)
	// means the replying leader itself, at the address it sent from.
	Holders []netip.AddrPort
}

// Reply returns holders for a request.
type Reply struct {
	MessageID string
	Entries   []Entry
}

// Keepalive asks a peer leader to prove it is up; its body is empty.
type Keepalive struct{}

// KeepaliveAck answers a keepalive.
type KeepaliveAck struct {
	// Nonce is the header nonce of the keepalive answered.
	Nonce [16]byte
}

// Envelope is a message with its authenticated header fields; exactly
// one of Request, Reply, Keepalive and Ack is set.
type Envelope struct {
	Type      Type
	Time      time.Time
	Nonce     [16]byte
	Request   *Request
	Reply     *Reply
	Keepalive *Keepalive
	Ack       *KeepaliveAck
}

// Key is the HMAC-SHA256 key derived from the shared secret.
type Key [32]byte

// DeriveKey turns the configured secret into the message key; the label
// keeps the key distinct from any other use of the same secret.
func DeriveKey(secret []byte) Key {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("outpost leader forwarding v1"))
	return Key(m.Sum(nil))
}

// NewEnvelope returns an envelope stamped now with a fresh random nonce.
func NewEnvelope(now time.Time) *Envelope {
	e := &Envelope{Time: now}
	rand.Read(e.Nonce[:])
	return e
}

// Seal encodes and authenticates e (its Request, Reply, Keepalive or
// Ack, whichever is set).
func Seal(key Key, e *Envelope) ([]byte, error) {
	var body []byte
	var err error
	set := 0
	for _, ok := range []bool{e.Request != nil, e.Reply != nil, e.Keepalive != nil, e.Ack != nil} {
		if ok {
			set++
		}
	}
	switch {
	case set != 1:
		return nil, fmt.Errorf("%w: an envelope carries exactly one message", ErrMalformed)
	case e.Request != nil:
		e.Type = TypeRequest
		body, err = appendRequest(nil, e.Request)
	case e.Reply != nil:
		e.Type = TypeReply
		body, err = appendReply(nil, e.Reply)
	case e.Keepalive != nil:
		e.Type = TypeKeepalive
	case e.Ack != nil:
		e.Type = TypeKeepaliveAck
		body = e.Ack.Nonce[:]
	}
	if err != nil {
		return nil, err
	}
	if HeaderSize+len(body)+MACSize > MaxMessageSize {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrMalformed, HeaderSize+len(body)+MACSize, MaxMessageSize)
	}
	b := make([]byte, HeaderSize, HeaderSize+len(body)+MACSize)
	copy(b[0:4], Magic)
	b[4] = WireVersion
	b[5] = byte(e.Type)
	binary.BigEndian.PutUint16(b[6:8], uint16(len(body)))
	binary.BigEndian.PutUint64(b[8:16], uint64(e.Time.UnixMilli()))
	copy(b[16:32], e.Nonce[:])
	b = append(b, body...)
	m := hmac.New(sha256.New, key[:])
	m.Write(b)
	return m.Sum(b), nil
}

// Open checks and decodes a datagram: framing, version, then the MAC
// before anything in the body is read. Time and nonce are the Guard's
// business.
func Open(key Key, b []byte) (*Envelope, error) {
	if len(b) < HeaderSize+MACSize || len(b) > MaxMessageSize {
		return nil, fmt.Errorf("%w: %d bytes", ErrMalformed, len(b))
	}
	if string(b[0:4]) != Magic {
		return nil, fmt.Errorf("%w: bad magic", ErrMalformed)
	}
	if b[4] != WireVersion {
		return nil, fmt.Errorf("%w: %d", ErrVersion, b[4])
	}
	n := int(binary.BigEndian.Uint16(b[6:8]))
	if HeaderSize+n+MACSize != len(b) {
		return nil, fmt.Errorf("%w: body length %d in a %d-byte datagram", ErrMalformed, n, len(b))
	}
	signed, mac := b[:HeaderSize+n], b[HeaderSize+n:]
	m := hmac.New(sha256.New, key[:])
	m.Write(signed)
	if !hmac.Equal(m.Sum(nil), mac) {
		return nil, ErrAuth
	}
	e := &Envelope{Type: Type(b[5]), Time: time.UnixMilli(int64(binary.BigEndian.Uint64(b[8:16])))}
	copy(e.Nonce[:], b[16:32])
	r := reader{b: b[HeaderSize : HeaderSize+n]}
	switch e.Type {
	case TypeRequest:
		e.Request = r.request()
	case TypeReply:
		e.Reply = r.reply()
	case TypeKeepalive:
		e.Keepalive = &Keepalive{} // a body is refused below
	case TypeKeepaliveAck:
		e.Ack = &KeepaliveAck{}
		copy(e.Ack.Nonce[:], r.bytes(len(e.Ack.Nonce))) // short: r.err is set
	default:
		return nil, fmt.Errorf("%w: type %d", ErrMalformed, e.Type)
	}
	if r.err != nil {
		return nil, r.err
	}
	if len(r.b) != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the body", ErrMalformed, len(r.b))
	}
	return e, nil
}

func appendString(b []byte, s string) ([]byte, error) {
	if len(s) == 0 || len(s) > MaxMessageIDSize {
		return nil, fmt.Errorf("%w: MessageID of %d bytes", ErrMalformed, len(s))
	}
	return append(append(b, byte(len(s))), s...), nil
}

func appendID(b, id []byte) ([]byte, error) {
	if len(id) == 0 || len(id) > MaxIDSize {
		return nil, fmt.Errorf("%w: segment ID of %d bytes", ErrMalformed, len(id))
	}
	return append(append(b, byte(len(id))), id...), nil
}

func appendRequest(b []byte, r *Request) ([]byte, error) {
	b, err := appendString(b, r.MessageID)
	if err != nil {
		return nil, err
	}
	if r.Version != pccrd.V1 && r.Version != pccrd.V2 {
		return nil, fmt.Errorf("%w: probe version %d", ErrMalformed, r.Version)
	}
	if len(r.SegmentIDs) == 0 || len(r.SegmentIDs) > MaxSegments {
		return nil, fmt.Errorf("%w: %d segment IDs", ErrMalformed, len(r.SegmentIDs))
	}
	b = append(b, byte(r.Version), byte(len(r.SegmentIDs)))
	for _, id := range r.SegmentIDs {
		if b, err = appendID(b, id); err != nil {
			return nil, err
		}
	}
	return b, nil
}

func appendReply(b []byte, r *Reply) ([]byte, error) {
	b, err := appendString(b, r.MessageID)
	if err != nil {
		return nil, err
	}
	if len(r.Entries) > MaxSegments {
		return nil, fmt.Errorf("%w: %d entries", ErrMalformed, len(r.Entries))
	}
	b = append(b, byte(len(r.Entries)))
	for _, e := range r.Entries {
		if b, err = appendID(b, e.SegmentID); err != nil {
			return nil, err
		}
		if e.Version > pccrc.V2 || e.Version < 0 {
			return nil, fmt.Errorf("%w: content version %d", ErrMalformed, e.Version)
		}
		var flags byte
		if e.Complete {
			flags |= flagComplete
		}
		b = append(b, byte(e.Version), flags)
		b = binary.BigEndian.AppendUint16(b, e.Blocks)
		b = binary.BigEndian.AppendUint32(b, e.Size)
		if len(e.Holders) > MaxHolders {
			return nil, fmt.Errorf("%w: %d holders", ErrMalformed, len(e.Holders))
		}
		b = append(b, byte(len(e.Holders)))
		for _, h := range e.Holders {
			a := h.Addr().Unmap()
			switch {
			case !a.IsValid() || a.IsUnspecified():
				b = append(b, 0)
			case a.Is4():
				b = append(b, 4)
				b = append(b, a.AsSlice()...)
			default:
				b = append(b, 6)
				b = append(b, a.AsSlice()...)
			}
			b = binary.BigEndian.AppendUint16(b, h.Port())
		}
	}
	return b, nil
}

const flagComplete = 1

// reader decodes a body; the first error sticks and every later read
// returns zero values.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
	}
	r.b = nil
}

func (r *reader) bytes(n int) []byte {
	if r.err != nil {
		return nil
	}
	if len(r.b) < n {
		r.fail("truncated")
		return nil
	}
	out := r.b[:n:n]
	r.b = r.b[n:]
	return out
}

func (r *reader) u8() byte {
	b := r.bytes(1)
	if b == nil {
		return 0
	}
	return b[0]
}

func (r *reader) u16() uint16 {
	b := r.bytes(2)
	if b == nil {
		return 0
	}
	return binary.BigEndian.Uint16(b)
}

func (r *reader) u32() uint32 {
	b := r.bytes(4)
	if b == nil {
		return 0
	}
	return binary.BigEndian.Uint32(b)
}

func (r *reader) messageID() string {
	n := int(r.u8())
	if r.err == nil && n == 0 {
		r.fail("empty MessageID")
	}
	return string(r.bytes(n))
}

func (r *reader) id() []byte {
	n := int(r.u8())
	if r.err == nil && (n == 0 || n > MaxIDSize) {
		r.fail("segment ID of %d bytes", n)
	}
	return r.bytes(n)
}

func (r *reader) request() *Request {
	req := &Request{MessageID: r.messageID(), Version: pccrd.Version(r.u8())}
	if r.err == nil && req.Version != pccrd.V1 && req.Version != pccrd.V2 {
		r.fail("probe version %d", req.Version)
	}
	n := int(r.u8())
	if r.err == nil && (n == 0 || n > MaxSegments) {
		r.fail("%d segment IDs", n)
	}
	for i := 0; i < n && r.err == nil; i++ {
		req.SegmentIDs = append(req.SegmentIDs, r.id())
	}
	return req
}

func (r *reader) reply() *Reply {
	rep := &Reply{MessageID: r.messageID()}
	n := int(r.u8())
	if r.err == nil && n > MaxSegments {
		r.fail("%d entries", n)
	}
	for i := 0; i < n && r.err == nil; i++ {
		e := Entry{SegmentID: r.id(), Version: pccrc.Version(r.u8())}
		flags := r.u8()
		if r.err == nil && (e.Version > pccrc.V2 || flags&^flagComplete != 0) {
			r.fail("content version %d, flags %#x", e.Version, flags)
		}
		e.Complete = flags&flagComplete != 0
		e.Blocks = r.u16()
		e.Size = r.u32()
		h := int(r.u8())
		if r.err == nil && h > MaxHolders {
			r.fail("%d holders", h)
		}
		for j := 0; j < h && r.err == nil; j++ {
			var a netip.Addr
			switch fam := r.u8(); fam {
			case 0:
				a = netip.IPv4Unspecified()
			case 4:
				if b := r.bytes(4); b != nil {
					a = netip.AddrFrom4([4]byte(b))
				}
			case 6:
				if b := r.bytes(16); b != nil {
					a = netip.AddrFrom16([16]byte(b))
				}
			default:
				r.fail("address family %d", fam)
			}
			port := r.u16()
			if r.err == nil {
				e.Holders = append(e.Holders, netip.AddrPortFrom(a, port))
			}
		}
		if r.err == nil {
			rep.Entries = append(rep.Entries, e)
		}
	}
	return rep
}
