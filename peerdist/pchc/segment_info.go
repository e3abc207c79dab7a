package pchc

import (
	"fmt"

	"github.com/outpost-appliance/outpost/peerdist/pccrc"
)

// ContentTagSize is the fixed size of the ContentTag in SEGMENT_INFO.
const ContentTagSize = 16

// MinSegmentInformationSize is the fixed header of a PCCRC 1.0 Content
// Information (Version, dwHashAlgo, dwOffsetInFirstSegment,
// dwReadBytesInLastSegment, cSegments). Shorter SegmentInformation cannot be
// content information at all.
const MinSegmentInformationSize = 18

// SegmentInfo is SEGMENT_INFO_MESSAGE: the client sends the hashes of a
// segment it offered, as a PCCRC 1.0 Content Information for just that
// segment.
//
// Only the framing is checked here. The inner structure is left to the
// pccrc package, because the conformance suite's encoder writes it oddly
// (dwOffsetInFirstSegment twice, §9 row 18) and a hosted cache must still
// accept it; keeping the raw bytes also makes re-encoding byte-exact.
type SegmentInfo struct {
	// Major is the header's MajorVersion. SEGMENT_INFO is accepted with
	// either major version (§9 row 15).
	Major uint8
	// Port is the client's MS-PCCRR listening port.
	Port uint16
	// ContentTag is opaque; see TagName for the values Windows uses.
	ContentTag [ContentTagSize]byte
	// SegmentInformation is the raw little-endian PCCRC 1.0 Content
	// Information, at least MinSegmentInformationSize bytes. Aliases the
	// decoded input.
	SegmentInformation []byte
}

// Type returns TypeSegmentInfo.
func (SegmentInfo) Type() MessageType { return TypeSegmentInfo }

func parseSegmentInfo(p prefix, rest []byte) (SegmentInfo, error) {
	if len(rest) < ContentTagSize+MinSegmentInformationSize {
		return SegmentInfo{}, malformed("%d bytes after the header, need a %d-byte content tag and at least %d bytes of segment information",
			len(rest), ContentTagSize, MinSegmentInformationSize)
	}
	m := SegmentInfo{Major: p.major, Port: p.port, SegmentInformation: rest[ContentTagSize:]}
	copy(m.ContentTag[:], rest)
	return m, nil
}

// AppendTo appends the encoded message to dst.
func (m SegmentInfo) AppendTo(dst []byte) ([]byte, error) {
	if len(m.SegmentInformation) < MinSegmentInformationSize {
		return dst, fmt.Errorf("pchc: segment info: %w",
			malformed("segment information of %d bytes, need at least %d", len(m.SegmentInformation), MinSegmentInformationSize))
	}
	if err := checkEncodedSize(m.size()); err != nil {
		return dst, fmt.Errorf("pchc: segment info: %w", err)
	}
	out, err := appendPrefix(dst, prefix{major: m.Major, typ: TypeSegmentInfo, port: m.Port})
	if err != nil {
		return dst, fmt.Errorf("pchc: segment info: %w", err)
	}
	out = append(out, m.ContentTag[:]...)
	return append(out, m.SegmentInformation...), nil
}

// Marshal returns the encoded message.
func (m SegmentInfo) Marshal() ([]byte, error) {
	return m.AppendTo(make([]byte, 0, m.size()))
}

func (m SegmentInfo) size() int {
	return prefixSize + ContentTagSize + len(m.SegmentInformation)
}

// ContentInfo parses the embedded content information. It is a separate
// step because the hosted cache must answer OK to a SEGMENT_INFO whatever
// it carries (protocols.md §4.3) and only then decide whether it can use
// it. The MS test suite writes dwReadBytesInLastSegment wrongly (§9 row 18);
// pccrc reads that field as the range, which the cache does not use.
func (m SegmentInfo) ContentInfo() (*pccrc.Info, error) {
	ci, err := pccrc.Parse(m.SegmentInformation)
	if err != nil {
		return nil, fmt.Errorf("pchc: segment info: %w: %w", ErrMalformed, err)
	}
	if ci.Version != pccrc.V1 {
		return nil, fmt.Errorf("pchc: segment info carries content information V%d, want V1: %w", ci.Version, ErrMalformed)
	}
	return ci, nil
}
