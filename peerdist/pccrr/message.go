package pccrr

import "fmt"

// Message is one of the eight PCCRR messages: *NegoReq, *NegoResp,
// *GetBlkList, *BlkList, *GetBlks, *Blk, *GetSegList or *SegList.
//
// AppendTo appends the wire form: for a response the 4-byte transport
// header comes first. It validates with the decoders' rules and returns an
// error wrapping ErrMalformed (and dst unchanged) for a message that could
// not be decoded again, e.g. one larger than the size limits. The ProtVer
// written is always VersionFor(Type()).
type Message interface {
	Type() MsgType
	AppendTo(dst []byte) ([]byte, error)
	Marshal() ([]byte, error)

	// msgSize is MsgSize: the message with its header, without the
	// transport header.
	msgSize() int
	// validate applies the field rules shared by encoder and decoder.
	validate() error
	appendBody(dst []byte) []byte
}

// appendMessage is AppendTo for every message. MSG_BLK also offers its
// head and tail separately, so a server need not copy the block.
func appendMessage(dst []byte, m Message) ([]byte, error) {
	out, err := appendHead(dst, m)
	if err != nil {
		return dst, err
	}
	return m.appendBody(out), nil
}

// appendHead validates m and appends the transport header (responses) and
// the MESSAGE_HEADER.
func appendHead(dst []byte, m Message) ([]byte, error) {
	t := m.Type()
	if err := m.validate(); err != nil {
		return dst, fmt.Errorf("pccrr: %v: %w", t, err)
	}
	limit := MaxRequestSize
	if t.IsResponse() {
		limit = MaxResponseSize
	}
	size := m.msgSize()
	if size > limit {
		return dst, malformed("pccrr: %v: %d bytes exceeds the %d-byte limit", t, size, limit)
	}
	if t.IsResponse() {
		dst = appendU32(dst, uint32(size))
	}
	h := Header{Version: VersionFor(t), Type: t, Size: uint32(size), Crypto: crypto(m)}
	return h.AppendTo(dst), nil
}

// crypto is the CryptoAlgoId field every message struct carries.
func crypto(m Message) CryptoAlgo {
	switch m := m.(type) {
	case *NegoReq:
		return m.Crypto
	case *NegoResp:
		return m.Crypto
	case *GetBlkList:
		return m.Crypto
	case *BlkList:
		return m.Crypto
	case *GetBlks:
		return m.Crypto
	case *Blk:
		return m.Crypto
	case *GetSegList:
		return m.Crypto
	case *SegList:
		return m.Crypto
	}
	return CryptoNone
}

func checkCrypto(c CryptoAlgo) error {
	if !c.Valid() {
		return malformed("unknown %v", c)
	}
	return nil
}

// marshal allocates exactly the wire size once.
func marshal(m Message) ([]byte, error) {
	n := m.msgSize()
	if m.Type().IsResponse() {
		n += TransportHeaderSize
	}
	b, err := m.AppendTo(make([]byte, 0, n))
	if err != nil {
		return nil, err
	}
	return b, nil
}
