package pccrd

import "fmt"

// Version says which content information version a message is about. It
// selects the wsd:Types value, the scope encoding and the reply extension.
type Version int

// The two discovery versions (MS-PCCRD §2.2.3).
const (
	// V1 is content information 1.0: Types PeerDist:PeerDistData, MatchBy
	// strcmp0, one hex token per segment, BlockCount in the reply.
	V1 Version = 1
	// V2 is content information 2.0: Types PeerDist:PeerDistDataV2, MatchBy
	// PeerDistV2MatchingRule, one base64 token for all segments,
	// availability bits and SegmentAges in the reply.
	V2 Version = 2
)

func (v Version) String() string {
	switch v {
	case V1:
		return "V1"
	case V2:
		return "V2"
	}
	return fmt.Sprintf("Version(%d)", int(v))
}

// TypeLocalName is the local name, in NamespacePeerDist, of the version's
// wsd:Types QName.
func (v Version) TypeLocalName() string {
	if v == V2 {
		return localPeerDistDataV2
	}
	return localPeerDistData
}

// MatchBy is the wsd:Scopes/@MatchBy rule a probe of this version carries.
func (v Version) MatchBy() string {
	if v == V2 {
		return MatchByPeerDistV2
	}
	return MatchByStrcmp0
}

func (v Version) valid() bool { return v == V1 || v == V2 }
