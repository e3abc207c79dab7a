package pchc

import "fmt"

// InitialOffer is INITIAL_OFFER_MESSAGE (v1.0): a client offers one segment,
// identified by its HoHoDk. The hosted cache answers ResponseInterested when
// it lacks the segment's hashes, and the client follows with SegmentInfo.
type InitialOffer struct {
	// Major is the header's MajorVersion; Windows 7 sends 1.
	Major uint8
	// Port is the client's own MS-PCCRR listening port. The address to pull
	// from is the TCP source address of the request.
	Port uint16
	// HoHoDk is the segment ID: all bytes after the connection information.
	// Its length must be 32, 48 or 64 (a SHA-256, SHA-384 or SHA-512
	// hash; Windows uses 32). Aliases the decoded input.
	HoHoDk []byte
}

// Type returns TypeInitialOffer.
func (InitialOffer) Type() MessageType { return TypeInitialOffer }

func parseInitialOffer(p prefix, rest []byte) (InitialOffer, error) {
	if err := checkHashSize(len(rest)); err != nil {
		return InitialOffer{}, err
	}
	return InitialOffer{Major: p.major, Port: p.port, HoHoDk: rest}, nil
}

// AppendTo appends the encoded message to dst.
func (m InitialOffer) AppendTo(dst []byte) ([]byte, error) {
	if err := checkHashSize(len(m.HoHoDk)); err != nil {
		return dst, fmt.Errorf("pchc: initial offer: %w", err)
	}
	out, err := appendPrefix(dst, prefix{major: m.Major, typ: TypeInitialOffer, port: m.Port})
	if err != nil {
		return dst, fmt.Errorf("pchc: initial offer: %w", err)
	}
	return append(out, m.HoHoDk...), nil
}

// Marshal returns the encoded message.
func (m InitialOffer) Marshal() ([]byte, error) {
	return m.AppendTo(make([]byte, 0, prefixSize+len(m.HoHoDk)))
}

// checkHashSize accepts the segment-ID sizes PCCRC 1.0 can produce. The
// message has no length field, so this is the only way to notice a
// truncated body.
func checkHashSize(n int) error {
	switch n {
	case 32, 48, 64:
		return nil
	}
	return malformed("segment hash of %d bytes, want 32, 48 or 64", n)
}
