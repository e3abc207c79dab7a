package pccrr

import "errors"

// GetBlkList is MSG_GETBLKLIST: which of these blocks of the segment do you
// have? SegmentID aliases the decoded input.
type GetBlkList struct {
	Crypto    CryptoAlgo // the client's preference only
	SegmentID []byte
	Ranges    []BlockRange // NeededBlockRanges: 1-256 valid ranges
}

// BlkList is MSG_BLKLIST: the requested blocks the server holds (no ranges:
// none of them) and the NextBlockIndex hint.
type BlkList struct {
	Crypto         CryptoAlgo
	SegmentID      []byte
	Ranges         []BlockRange // 0-256 valid ranges
	NextBlockIndex uint32
}

// GetBlks is MSG_GETBLKS. The spec says one range of one block; Windows
// accepts more and serves the lowest (see FirstBlock), so 1-256 ranges are
// accepted. DataForVrfBlock is unused: ignored on receipt, sent empty.
type GetBlks struct {
	Crypto    CryptoAlgo // the client's preference only
	SegmentID []byte
	Ranges    []BlockRange // ReqBlockRanges: 1-256 valid ranges
}

func (m *GetBlkList) Type() MsgType { return MsgGetBlkList }
func (m *GetBlkList) msgSize() int {
	return HeaderSize + paddedLen(m.SegmentID) + 4 + 8*len(m.Ranges)
}
func (m *GetBlkList) validate() error {
	return errors.Join(checkCrypto(m.Crypto), validateBlockRanges(m.Ranges, 1))
}
func (m *GetBlkList) AppendTo(dst []byte) ([]byte, error) { return appendMessage(dst, m) }
func (m *GetBlkList) Marshal() ([]byte, error)            { return marshal(m) }
func (m *GetBlkList) appendBody(dst []byte) []byte {
	return appendRanges(appendPadded(dst, m.SegmentID), m.Ranges)
}

func parseGetBlkList(r *reader, h Header) *GetBlkList {
	m := &GetBlkList{Crypto: h.Crypto}
	m.SegmentID = r.padded("SegmentID")
	m.Ranges = r.ranges("NeededBlockRanges")
	return m
}

func (m *BlkList) Type() MsgType { return MsgBlkList }
func (m *BlkList) msgSize() int {
	return HeaderSize + paddedLen(m.SegmentID) + 4 + 8*len(m.Ranges) + 4
}
func (m *BlkList) validate() error {
	if m.NextBlockIndex >= MaxBlocks {
		return malformed("NextBlockIndex %d above 511", m.NextBlockIndex)
	}
	return errors.Join(checkCrypto(m.Crypto), validateBlockRanges(m.Ranges, 0))
}
func (m *BlkList) AppendTo(dst []byte) ([]byte, error) { return appendMessage(dst, m) }
func (m *BlkList) Marshal() ([]byte, error)            { return marshal(m) }
func (m *BlkList) appendBody(dst []byte) []byte {
	dst = appendRanges(appendPadded(dst, m.SegmentID), m.Ranges)
	return appendU32(dst, m.NextBlockIndex)
}

func parseBlkList(r *reader, h Header) *BlkList {
	m := &BlkList{Crypto: h.Crypto}
	m.SegmentID = r.padded("SegmentId")
	m.Ranges = r.ranges("BlockRanges")
	m.NextBlockIndex = r.u32("NextBlockIndex")
	return m
}

func (m *GetBlks) Type() MsgType { return MsgGetBlks }
func (m *GetBlks) msgSize() int {
	return HeaderSize + paddedLen(m.SegmentID) + 4 + 8*len(m.Ranges) + 4
}
func (m *GetBlks) validate() error {
	return errors.Join(checkCrypto(m.Crypto), validateBlockRanges(m.Ranges, 1))
}
func (m *GetBlks) AppendTo(dst []byte) ([]byte, error) { return appendMessage(dst, m) }
func (m *GetBlks) Marshal() ([]byte, error)            { return marshal(m) }
func (m *GetBlks) appendBody(dst []byte) []byte {
	dst = appendRanges(appendPadded(dst, m.SegmentID), m.Ranges)
	return appendU32(dst, 0) // SizeOfDataForVrfBlock
}

func parseGetBlks(r *reader, h Header) *GetBlks {
	m := &GetBlks{Crypto: h.Crypto}
	m.SegmentID = r.padded("SegmentID")
	m.Ranges = r.ranges("ReqBlockRanges")
	r.sized("DataForVrfBlock") // unused by the protocol
	return m
}

// FirstBlock is the block to serve: the lowest index requested
// (protocols.md §3.5). ok is false only for a message without ranges.
func (m *GetBlks) FirstBlock() (index uint32, ok bool) {
	for i, r := range m.Ranges {
		if i == 0 || r.Index < index {
			index = r.Index
		}
	}
	return index, len(m.Ranges) > 0
}
