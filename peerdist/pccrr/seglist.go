package pccrr

import "errors"

// GetSegList is MSG_GETSEGLIST (ProtVer 2.0, hosted-cache clients only):
// which of these segments do you have? SegmentIDs and ExtensibleBlob alias
// the decoded input. The blob is kept raw: decode it with
// ParseSegmentAges, and on failure drop the blob, not the message.
type GetSegList struct {
	Crypto         CryptoAlgo
	RequestID      [16]byte // opaque, echoed in the reply
	SegmentIDs     [][]byte
	ExtensibleBlob []byte // may be empty
}

// SegList is MSG_SEGLIST. Ranges index the request's SegmentIDs (held fully
// or partly; none: no ranges). ExtensibleBlob SHOULD carry segment ages
// (see SegmentAges.Marshal); it is kept raw like GetSegList's.
type SegList struct {
	Crypto         CryptoAlgo
	RequestID      [16]byte
	Ranges         []SegmentRange
	ExtensibleBlob []byte
}

func (m *GetSegList) Type() MsgType { return MsgGetSegList }
func (m *GetSegList) msgSize() int {
	n := HeaderSize + 16 + 4 + 4 + len(m.ExtensibleBlob)
	for _, id := range m.SegmentIDs {
		n += paddedLen(id)
	}
	return n
}
func (m *GetSegList) validate() error                     { return checkCrypto(m.Crypto) }
func (m *GetSegList) AppendTo(dst []byte) ([]byte, error) { return appendMessage(dst, m) }
func (m *GetSegList) Marshal() ([]byte, error)            { return marshal(m) }
func (m *GetSegList) appendBody(dst []byte) []byte {
	dst = append(dst, m.RequestID[:]...)
	dst = appendU32(dst, uint32(len(m.SegmentIDs)))
	for _, id := range m.SegmentIDs {
		dst = appendPadded(dst, id)
	}
	return appendSized(dst, m.ExtensibleBlob)
}

func parseGetSegList(r *reader, h Header) *GetSegList {
	m := &GetSegList{Crypto: h.Crypto}
	copy(m.RequestID[:], r.bytes("RequestID", 16))
	n := r.u32("CountOfSegmentIDs")
	// Each ID takes at least its 4-byte size: check before allocating.
	if r.err == nil && uint64(n)*4 > uint64(r.remaining()) {
		r.fail("CountOfSegmentIDs %d needs %d bytes, %d left", n, uint64(n)*4, r.remaining())
	}
	if r.err == nil && n > 0 {
		m.SegmentIDs = make([][]byte, n)
		for i := range m.SegmentIDs {
			m.SegmentIDs[i] = r.padded("SegmentID")
		}
	}
	m.ExtensibleBlob = r.sized("ExtensibleBlob")
	return m
}

func (m *SegList) Type() MsgType { return MsgSegList }
func (m *SegList) msgSize() int {
	return HeaderSize + 16 + 4 + 8*len(m.Ranges) + 4 + len(m.ExtensibleBlob)
}
func (m *SegList) validate() error {
	return errors.Join(checkCrypto(m.Crypto), validateSegmentRanges(m.Ranges))
}
func (m *SegList) AppendTo(dst []byte) ([]byte, error) { return appendMessage(dst, m) }
func (m *SegList) Marshal() ([]byte, error)            { return marshal(m) }
func (m *SegList) appendBody(dst []byte) []byte {
	dst = append(dst, m.RequestID[:]...)
	dst = appendRanges(dst, m.Ranges)
	return appendSized(dst, m.ExtensibleBlob)
}

func parseSegList(r *reader, h Header) *SegList {
	m := &SegList{Crypto: h.Crypto}
	copy(m.RequestID[:], r.bytes("RequestID", 16))
	m.Ranges = r.ranges("SegmentRanges")
	m.ExtensibleBlob = r.sized("ExtensibleBlob")
	return m
}
