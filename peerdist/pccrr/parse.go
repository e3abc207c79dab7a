package pccrr

import (
	"encoding/binary"
	"fmt"
)

// ParseRequest decodes a request body as received over HTTP: exactly one
// message, no transport header, 16 to 98 304 bytes, MsgSize equal to the
// length. Errors wrap ErrMalformed (answer HTTP 400), except a *VersionError
// for a major version we do not speak (answer NewNegoResp). See checkHeader
// for how ProtVer and CryptoAlgoId are judged. The result aliases b.
func ParseRequest(b []byte) (Message, error) {
	if len(b) > MaxRequestSize {
		return nil, malformed("pccrr: request of %d bytes exceeds %d", len(b), MaxRequestSize)
	}
	h, err := frame(b)
	if err != nil {
		return nil, err
	}
	if err := checkHeader(h, false); err != nil {
		return nil, err
	}
	return parseBody(b, h)
}

// ParseResponse decodes a response body: the 4-byte transport header, whose
// Size must equal both MsgSize and the bytes that follow it, then one
// message of 16 to 393 216 bytes. Errors are as for ParseRequest. The
// result aliases b.
func ParseResponse(b []byte) (Message, error) {
	if len(b) < TransportHeaderSize {
		return nil, malformed("pccrr: response of %d bytes has no transport header", len(b))
	}
	size := binary.BigEndian.Uint32(b)
	msg := b[TransportHeaderSize:]
	if uint64(size) != uint64(len(msg)) {
		return nil, malformed("pccrr: transport header says %d bytes, %d follow", size, len(msg))
	}
	if size > MaxResponseSize {
		return nil, malformed("pccrr: response of %d bytes exceeds %d", size, MaxResponseSize)
	}
	h, err := frame(msg)
	if err != nil {
		return nil, err
	}
	if err := checkHeader(h, true); err != nil {
		return nil, err
	}
	return parseBody(msg, h)
}

// frame reads the header and checks that MsgSize is the message length.
func frame(b []byte) (Header, error) {
	h, err := ParseHeader(b)
	if err != nil {
		return h, err
	}
	if uint64(h.Size) != uint64(len(b)) {
		return h, malformed("pccrr: MsgSize %d but the message has %d bytes", h.Size, len(b))
	}
	return h, nil
}

func parseBody(b []byte, h Header) (Message, error) {
	r := &reader{b: b, off: HeaderSize}
	var m Message
	switch h.Type {
	case MsgNegoReq:
		lo, hi := parseNego(r)
		m = &NegoReq{Crypto: h.Crypto, MinVersion: lo, MaxVersion: hi}
	case MsgNegoResp:
		lo, hi := parseNego(r)
		m = &NegoResp{Crypto: h.Crypto, MinVersion: lo, MaxVersion: hi}
	case MsgGetBlkList:
		m = parseGetBlkList(r, h)
	case MsgBlkList:
		m = parseBlkList(r, h)
	case MsgGetBlks:
		m = parseGetBlks(r, h)
	case MsgBlk:
		m = parseBlk(r, h)
	case MsgGetSegList:
		m = parseGetSegList(r, h)
	case MsgSegList:
		m = parseSegList(r, h)
	default: // checkHeader let through only known types
		return nil, malformed("pccrr: unknown %v", h.Type)
	}
	err := r.done()
	if err == nil {
		err = m.validate()
	}
	if err != nil {
		return nil, fmt.Errorf("pccrr: %v: %w", h.Type, err)
	}
	return m, nil
}
