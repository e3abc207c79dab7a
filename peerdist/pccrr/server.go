package pccrr

// Replies a retrieval server builds (protocols.md §3.5). A server answers
// unknown segments, missing blocks and overload with the NotFound replies,
// all normal messages (HTTP 200). Replies alias the request's segment ID.

// NewBlkList answers req from held, the blocks of req's segment we hold
// (nil: unknown segment). Ranges are the held blocks among those requested,
// sorted and merged. NextBlockIndex is the first held block after the last
// requested one (0 if none): the spec defines it only by copying MSG_BLK's
// "first block after the block sent", and beyond the requested window is
// the reading that tells the client something new. The header echoes the
// client's CryptoAlgoId, as the vectors do.
func NewBlkList(req *GetBlkList, held *BlockSet) *BlkList {
	m := NotFoundBlkList(req)
	if held != nil {
		m.Ranges = held.Intersect(req.Ranges)
		m.NextBlockIndex = held.NextAfter(lastBlock(req.Ranges))
	}
	return m
}

// NotFoundBlkList is MSG_BLKLIST with no ranges and NextBlockIndex 0.
func NotFoundBlkList(req *GetBlkList) *BlkList {
	return &BlkList{Crypto: req.Crypto, SegmentID: req.SegmentID}
}

// NewBlk builds the MSG_BLK serving block index of segmentID: block is the
// stored ciphertext (not copied), encrypted with algo under iv, and
// NextBlockIndex the next block after index in held (0 if none).
func NewBlk(segmentID []byte, index uint32, held *BlockSet, algo CryptoAlgo, block, iv []byte) *Blk {
	m := &Blk{Crypto: algo, SegmentID: segmentID, BlockIndex: index, Block: block, IV: iv}
	if held != nil {
		m.NextBlockIndex = held.NextAfter(index)
	}
	return m
}

// NotFoundBlk is the MSG_BLK for a block we do not have: the requested
// (lowest) index, SizeOfBlock 0, CryptoAlgoId NONE, no VrfBlock, no IV,
// NextBlockIndex 0 (the python-peerdist convention; iPXE reads SizeOfBlock
// 0 as "not found").
func NotFoundBlk(req *GetBlks) *Blk {
	index, _ := req.FirstBlock()
	return &Blk{Crypto: CryptoNone, SegmentID: req.SegmentID, BlockIndex: index}
}

// NewSegList answers req with the ranges of the indexes of its segment IDs
// for which held reports true (segments held fully or partly). Set
// ExtensibleBlob from SegmentAges.Marshal to report ages.
func NewSegList(req *GetSegList, held func(segmentID []byte) bool) *SegList {
	m := NotFoundSegList(req)
	for i, id := range req.SegmentIDs {
		if !held(id) {
			continue
		}
		if n := len(m.Ranges); n > 0 && m.Ranges[n-1].end() == uint64(i) {
			m.Ranges[n-1].Count++
		} else {
			m.Ranges = append(m.Ranges, SegmentRange{Index: uint32(i), Count: 1})
		}
	}
	return m
}

// NotFoundSegList is MSG_SEGLIST with no ranges and no blob.
func NotFoundSegList(req *GetSegList) *SegList {
	return &SegList{Crypto: req.Crypto, RequestID: req.RequestID}
}
