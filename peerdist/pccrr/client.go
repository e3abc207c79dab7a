package pccrr

import "bytes"

// Checks a retrieval client makes on replies (protocols.md §3.7): match a
// response to the request by segment ID and block index and discard
// anything else; on MSG_NEGO_RESP pick the highest common major version.

// Answers reports whether m is the reply to req: same segment ID and the
// block req asks for (its lowest index).
func (m *Blk) Answers(req *GetBlks) bool {
	index, ok := req.FirstBlock()
	return ok && m.BlockIndex == index && bytes.Equal(m.SegmentID, req.SegmentID)
}

// Answers reports whether m is the reply to req: same segment ID and every
// returned range overlapping a requested one (MS-PCCRR §3.1.5.2).
func (m *BlkList) Answers(req *GetBlkList) bool {
	if !bytes.Equal(m.SegmentID, req.SegmentID) {
		return false
	}
	for _, got := range m.Ranges {
		overlaps := false
		for _, asked := range req.Ranges {
			if uint64(got.Index) < asked.end() && uint64(asked.Index) < got.end() {
				overlaps = true
				break
			}
		}
		if !overlaps {
			return false
		}
	}
	return true
}

// Answers reports whether m is the reply to req: same RequestID and every
// range within req's list of segment IDs.
func (m *SegList) Answers(req *GetSegList) bool {
	if m.RequestID != req.RequestID {
		return false
	}
	for _, r := range m.Ranges {
		if r.end() > uint64(len(req.SegmentIDs)) {
			return false
		}
	}
	return true
}

// CommonMajor is the highest major version in both [theirMin, theirMax] and
// our MinMajor..MaxMajor; ok is false when the ranges do not overlap.
// Minor versions never matter (protocols.md §3.5).
func CommonMajor(theirMin, theirMax ProtVer) (major uint16, ok bool) {
	hi := min(theirMax.Major, MaxMajor)
	lo := max(theirMin.Major, MinMajor)
	if hi < lo {
		return 0, false
	}
	return hi, true
}

// CommonMajor is the major version to resend in after this reply.
func (m *NegoResp) CommonMajor() (uint16, bool) { return CommonMajor(m.MinVersion, m.MaxVersion) }

// CommonMajor is the major version a server and this requester share.
func (m *NegoReq) CommonMajor() (uint16, bool) { return CommonMajor(m.MinVersion, m.MaxVersion) }
