package pccrd

import (
	"encoding/xml"
	"errors"
	"fmt"
	"strings"
)

// ProbeMatch is a PeerDist discovery reply (MS-PCCRD §2.2.2.2): one
// wsd:ProbeMatch inside wsd:ProbeMatches, unicast to the prober, saying
// which probed segments the sender holds and where to fetch them.
type ProbeMatch struct {
	// MessageID is the reply's own fresh "urn:uuid:…" ID.
	MessageID string
	// RelatesTo is the MessageID of the probe answered.
	RelatesTo string
	// InstanceID and MessageNumber form wsd:AppSequence: InstanceID is
	// fixed per service start and grows on restart, MessageNumber counts
	// messages sent under it from 1 (docs/protocols.md §5.4).
	InstanceID, MessageNumber uint64
	// EndpointAddress is the responder's stable "urn:uuid:…" identity
	// (wsa:EndpointReference/wsa:Address), new per service start.
	EndpointAddress string
	Version         Version

	// Tokens (V1) are the probe's scope tokens of the segments held, echoed
	// exactly as the probe spelled them.
	Tokens []string
	// BlockCounts (V1) are the number of blocks held per token, in token
	// order; 0 means "not held" to iPXE. Marshal requires one per token.
	// Parsing keeps what was on the wire, which may be fewer or more than
	// the tokens: the spec's own example (§4.3) has two tokens and one
	// count. A token without a count has an unknown count.
	BlockCounts []uint32

	// Availability (V2) answers every probe entry in probe order. Parsing
	// returns four entries per byte, so trailing padding entries follow the
	// real ones; see UnpackAvailability.
	Availability []Availability
	// SegmentAges (V2) is the raw Extensible Blob of PeerDist:SegmentAges
	// (MS-PCCRR §2.2.6.1), decoded elsewhere. Empty omits the element.
	SegmentAges []byte

	// XAddrs are the MS-PCCRR endpoints, "ip:port" each (see XAddr).
	XAddrs []string
	// MetadataVersion is 1 for Windows 7/2008 R2 style, 2 for Windows 8+.
	MetadataVersion uint32
}

// probeMatchFields collects the leaves of a ProbeMatches message.
type probeMatchFields struct {
	header                                          header
	types                                           typesField
	address, scopes, xaddrs, metadata, blocks, ages textField
}

func (f *probeMatchFields) visit(path []xml.Name, leaf *leafElement) error {
	if name, ok := headerChild(path); ok {
		return f.header.visit(name, leaf)
	}
	body, ok := bodyPath(path)
	if !ok || len(body) < 3 || body[0] != wsdName("ProbeMatches") || body[1] != wsdName("ProbeMatch") {
		return nil
	}
	switch rest := body[2:]; {
	case len(rest) == 1 && rest[0] == wsdName("Types"):
		return f.types.set(leaf)
	case len(rest) == 1 && rest[0] == wsdName("Scopes"):
		return f.scopes.set("wsd:Scopes", leaf)
	case len(rest) == 1 && rest[0] == wsdName("XAddrs"):
		return f.xaddrs.set("wsd:XAddrs", leaf)
	case len(rest) == 1 && rest[0] == wsdName("MetadataVersion"):
		return f.metadata.set("wsd:MetadataVersion", leaf)
	case len(rest) == 2 && rest[0] == wsaName("EndpointReference") && rest[1] == wsaName("Address"):
		return f.address.set("wsa:Address", leaf)
	case len(rest) == 2 && isPeerDistWrapper(rest[0]) && rest[1] == peerDistName(localBlockCount):
		return f.blocks.set("PeerDist:BlockCount", leaf)
	case len(rest) == 2 && isPeerDistWrapper(rest[0]) && rest[1] == peerDistName(localSegmentAges):
		return f.ages.set("PeerDist:SegmentAges", leaf)
	}
	return nil
}

// isPeerDistWrapper accepts both names of the reply extension element: the
// 2012 text wraps V2 data in PeerDistDataV2, v20240423 in PeerDistData
// (docs/protocols.md §9 row 21). Either is accepted for either version.
func isPeerDistWrapper(n xml.Name) bool {
	return n == peerDistName(localPeerDistData) || n == peerDistName(localPeerDistDataV2)
}

// ParseProbeMatch decodes a ProbeMatches datagram holding one PeerDist
// ProbeMatch. More than one ProbeMatch is refused as malformed (a PeerDist
// responder sends one per datagram, and iPXE reads only the first).
func ParseProbeMatch(datagram []byte) (*ProbeMatch, error) {
	var f probeMatchFields
	if err := scanLeaves(datagram, f.visit); err != nil {
		return nil, fmt.Errorf("pccrd: probe match: %w", err)
	}
	m, err := f.probeMatch()
	if err != nil {
		return nil, fmt.Errorf("pccrd: probe match: %w", err)
	}
	return m, nil
}

func (f *probeMatchFields) probeMatch() (*ProbeMatch, error) {
	h := &f.header
	if err := h.checkAction(ActionProbeMatches); err != nil {
		return nil, err
	}
	version, err := f.types.version()
	if err != nil {
		return nil, err
	}
	m := &ProbeMatch{Version: version}
	if m.MessageID, err = requiredText("wsa:MessageID", h.messageID); err != nil {
		return nil, err
	}
	if m.RelatesTo, err = requiredText("wsa:RelatesTo", h.relatesTo); err != nil {
		return nil, err
	}
	if !h.appSequence {
		return nil, fmt.Errorf("%w: no wsd:AppSequence", ErrMalformed)
	}
	if m.InstanceID, err = parseUint("AppSequence InstanceId", h.instanceID.value, h.instanceID.present); err != nil {
		return nil, err
	}
	if m.MessageNumber, err = parseUint("AppSequence MessageNumber", h.messageNumber.value, h.messageNumber.present); err != nil {
		return nil, err
	}
	if m.EndpointAddress, err = requiredText("wsa:Address", f.address); err != nil {
		return nil, err
	}
	metadata, err := parseUint("wsd:MetadataVersion", f.metadata.value, f.metadata.present)
	if err != nil {
		return nil, err
	}
	if metadata > 0xFFFFFFFF {
		return nil, fmt.Errorf("%w: MetadataVersion %d exceeds 32 bits", ErrMalformed, metadata)
	}
	m.MetadataVersion = uint32(metadata)
	if m.XAddrs, err = parseXAddrs(f.xaddrs); err != nil {
		return nil, err
	}
	if !f.scopes.present {
		return nil, fmt.Errorf("%w: no wsd:Scopes", ErrMalformed)
	}
	if version == V1 {
		err = f.v1(m)
	} else {
		err = f.v2(m)
	}
	return m, err
}

func (f *probeMatchFields) v1(m *ProbeMatch) error {
	if f.ages.present {
		return fmt.Errorf("%w: SegmentAges in a V1 reply", ErrMalformed)
	}
	var err error
	if m.Tokens, _, err = parseV1Scopes(f.scopes.value); err != nil {
		return err
	}
	if !f.blocks.present {
		return fmt.Errorf("%w: no PeerDist:BlockCount", ErrMalformed)
	}
	m.BlockCounts, err = parseBlockCounts(f.blocks.value)
	return err
}

func (f *probeMatchFields) v2(m *ProbeMatch) error {
	if f.blocks.present {
		return fmt.Errorf("%w: BlockCount in a V2 reply", ErrMalformed)
	}
	tokens := fieldsXML(f.scopes.value)
	if len(tokens) != 1 {
		return fmt.Errorf("%w: V2 scopes hold %d tokens, want one", ErrMalformed, len(tokens))
	}
	bits, err := v2Base64().DecodeString(tokens[0])
	if err != nil || len(bits) == 0 {
		return fmt.Errorf("%w: V2 availability %.24q is not non-empty base64", ErrMalformed, tokens[0])
	}
	m.Availability = UnpackAvailability(bits)
	if f.ages.present {
		if m.SegmentAges, err = v2Base64().DecodeString(f.ages.value); err != nil || len(m.SegmentAges) == 0 {
			return fmt.Errorf("%w: SegmentAges %.24q is not non-empty base64", ErrMalformed, f.ages.value)
		}
	}
	return nil
}

func parseXAddrs(f textField) ([]string, error) {
	if !f.present {
		return nil, fmt.Errorf("%w: no wsd:XAddrs", ErrMalformed)
	}
	xaddrs := fieldsXML(f.value)
	if len(xaddrs) == 0 {
		return nil, fmt.Errorf("%w: empty wsd:XAddrs", ErrMalformed)
	}
	for _, x := range xaddrs {
		if err := checkXAddr(x); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
		}
	}
	return xaddrs, nil
}

// checkXAddr accepts one XAddrs entry, the same way for both directions:
// an address ParseXAddr understands, and (for IPv6 zones, which may hold
// anything) text that XML carries unchanged as one list item.
func checkXAddr(x string) error {
	if err := checkText("XAddr", x); err != nil {
		return err
	}
	if strings.ContainsAny(x, xmlSpace) {
		return fmt.Errorf("XAddr %q contains white space", x)
	}
	_, err := ParseXAddr(x)
	return err
}

// Marshal encodes the reply in the canonical layout, which meets every
// check iPXE makes (docs/protocols.md §10): literal <wsd:Scopes>,
// <wsd:XAddrs> and <PeerDist:BlockCount> with no attributes (no MatchBy in
// a reply), one ProbeMatch, 8 upper-case hex digits per block count, no
// white space between them. Element order follows MS-PCCRD §2.2.2.2.
func (m *ProbeMatch) Marshal() ([]byte, error) {
	scopes, extension, err := m.versionParts()
	if err != nil {
		return nil, fmt.Errorf("pccrd: marshal probe match: %v", err)
	}
	for _, t := range []struct{ what, value string }{
		{"MessageID", m.MessageID}, {"RelatesTo", m.RelatesTo}, {"EndpointAddress", m.EndpointAddress},
	} {
		if err := checkText(t.what, t.value); err != nil {
			return nil, fmt.Errorf("pccrd: marshal probe match: %v", err)
		}
	}
	if len(m.XAddrs) == 0 {
		return nil, errors.New("pccrd: marshal probe match: no XAddrs")
	}
	for _, x := range m.XAddrs {
		if err := checkXAddr(x); err != nil {
			return nil, fmt.Errorf("pccrd: marshal probe match: %v", err)
		}
	}

	b := make([]byte, 0, 1536)
	b = append(b, envelopeOpen...)
	b = append(b, "<soap:Header>\n"+
		"<wsa:To>"+ToAnonymous+"</wsa:To>\n"+
		"<wsa:Action>"+ActionProbeMatches+"</wsa:Action>\n"+
		"<wsa:MessageID>"...)
	b = appendEscaped(b, m.MessageID)
	b = append(b, "</wsa:MessageID>\n<wsa:RelatesTo>"...)
	b = appendEscaped(b, m.RelatesTo)
	b = append(b, "</wsa:RelatesTo>\n"+`<wsd:AppSequence InstanceId="`...)
	b = appendUint(b, m.InstanceID)
	b = append(b, `" MessageNumber="`...)
	b = appendUint(b, m.MessageNumber)
	b = append(b, `"/>`+"\n"+
		"</soap:Header>\n"+
		"<soap:Body>\n"+
		"<wsd:ProbeMatches>\n"+
		"<wsd:ProbeMatch>\n"+
		"<wsa:EndpointReference><wsa:Address>"...)
	b = appendEscaped(b, m.EndpointAddress)
	b = append(b, "</wsa:Address></wsa:EndpointReference>\n"+
		"<wsd:Types>PeerDist:"...)
	b = append(b, m.Version.TypeLocalName()...)
	b = append(b, "</wsd:Types>\n<wsd:Scopes>"...)
	b = append(b, scopes...)
	b = append(b, "</wsd:Scopes>\n<wsd:XAddrs>"...)
	for i, x := range m.XAddrs {
		if i > 0 {
			b = append(b, ' ')
		}
		b = appendEscaped(b, x)
	}
	b = append(b, "</wsd:XAddrs>\n<wsd:MetadataVersion>"...)
	b = appendUint(b, uint64(m.MetadataVersion))
	b = append(b, "</wsd:MetadataVersion>\n"...)
	b = append(b, extension...)
	b = append(b, "</wsd:ProbeMatch>\n"+
		"</wsd:ProbeMatches>\n"+
		"</soap:Body>\n"+
		"</soap:Envelope>\n"...)
	if len(b) > MaxDatagramSize {
		return nil, fmt.Errorf("pccrd: marshal probe match: %w: %d bytes", ErrTooLarge, len(b))
	}
	return b, nil
}

// versionParts returns the Scopes text and the PeerDist extension line
// (with its newline, or empty) for the reply's version.
func (m *ProbeMatch) versionParts() (scopes string, extension []byte, err error) {
	switch m.Version {
	case V1:
		if len(m.Availability) > 0 || len(m.SegmentAges) > 0 {
			return "", nil, errors.New("V2 fields in a V1 reply")
		}
		if len(m.Tokens) == 0 {
			return "", nil, errors.New("V1 reply without tokens")
		}
		if len(m.BlockCounts) != len(m.Tokens) {
			return "", nil, fmt.Errorf("%d block counts for %d tokens (iPXE needs one per token)", len(m.BlockCounts), len(m.Tokens))
		}
		for _, t := range m.Tokens {
			if _, err := decodeV1Token(t); err != nil {
				return "", nil, err
			}
		}
		extension = append(extension, "<PeerDist:PeerDistData><PeerDist:BlockCount>"...)
		extension = appendBlockCounts(extension, m.BlockCounts)
		extension = append(extension, "</PeerDist:BlockCount></PeerDist:PeerDistData>\n"...)
		return strings.Join(m.Tokens, " "), extension, nil
	case V2:
		if len(m.Tokens) > 0 || len(m.BlockCounts) > 0 {
			return "", nil, errors.New("V1 fields in a V2 reply")
		}
		if len(m.Availability) == 0 {
			return "", nil, errors.New("V2 reply without availability entries")
		}
		bits, err := PackAvailability(m.Availability)
		if err != nil {
			return "", nil, err
		}
		if len(m.SegmentAges) > 0 {
			// v20240423 wraps SegmentAges in PeerDistData (§9 row 21).
			extension = append(extension, "<PeerDist:PeerDistData><PeerDist:SegmentAges>"...)
			extension = append(extension, v2Base64().EncodeToString(m.SegmentAges)...)
			extension = append(extension, "</PeerDist:SegmentAges></PeerDist:PeerDistData>\n"...)
		}
		return v2Base64().EncodeToString(bits), extension, nil
	}
	return "", nil, fmt.Errorf("unknown version %v", m.Version)
}
