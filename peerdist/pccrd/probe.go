package pccrd

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"slices"
)

// Probe is a PeerDist discovery request: "who holds these segments?"
// (MS-PCCRD §2.2.2.1), multicast by a client to UDP 3702.
type Probe struct {
	// MessageID is the probe's "urn:uuid:…" ID; a ProbeMatch quotes it in
	// RelatesTo. NewMessageID makes a fresh one.
	MessageID string
	Version   Version
	// SegmentIDs are the decoded segment IDs (HoHoDk) in probe order.
	SegmentIDs [][]byte
	// Tokens are the wsd:Scopes tokens exactly as received: V1 one hex
	// token per segment ID, in the client's letter case, which a V1
	// ProbeMatch must echo verbatim (the client compares strings); V2 one
	// base64 token holding all IDs. Marshal writes Tokens when set (they
	// must then encode SegmentIDs), so a relayed probe keeps the client's
	// spelling, and derives canonical tokens when empty.
	Tokens []string
}

// ParseProbe decodes a Probe datagram. Other WS-Discovery messages give
// ErrNotPeerDist; broken XML and PeerDist probes with a missing MessageID
// or empty or malformed Scopes give ErrMalformed (MS-PCCRD §3.2.4.1).
//
// Leniency: any namespace prefixes, either hex case in V1 tokens, a missing
// MatchBy attribute (the Types already fix the scope format). A MatchBy
// naming another rule is malformed.
func ParseProbe(datagram []byte) (*Probe, error) {
	var (
		h       header
		types   typesField
		scopes  textField
		matchBy attrValue
	)
	err := scanLeaves(datagram, func(path []xml.Name, leaf *leafElement) error {
		if name, ok := headerChild(path); ok {
			return h.visit(name, leaf)
		}
		body, ok := bodyPath(path)
		if !ok || len(body) != 2 || body[0] != wsdName("Probe") {
			return nil
		}
		switch body[1] {
		case wsdName("Types"):
			return types.set(leaf)
		case wsdName("Scopes"):
			var err error
			if matchBy, err = leaf.attr("MatchBy"); err != nil {
				return err
			}
			return scopes.set("wsd:Scopes", leaf)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("pccrd: probe: %w", err)
	}
	if err := h.checkAction(ActionProbe); err != nil {
		return nil, fmt.Errorf("pccrd: probe: %w", err)
	}
	version, err := types.version()
	if err != nil {
		return nil, fmt.Errorf("pccrd: probe: %w", err)
	}
	p := &Probe{Version: version}
	if p.MessageID, err = requiredText("wsa:MessageID", h.messageID); err != nil {
		return nil, fmt.Errorf("pccrd: probe: %w", err)
	}
	if matchBy.present && trimXML(matchBy.value) != version.MatchBy() {
		return nil, fmt.Errorf("pccrd: probe scopes: %w: MatchBy %q for a %v probe", ErrMalformed, matchBy.value, version)
	}
	if !scopes.present {
		return nil, fmt.Errorf("pccrd: probe scopes: %w: no wsd:Scopes", ErrMalformed)
	}
	if p.Tokens, p.SegmentIDs, err = parseScopes(version, scopes.value); err != nil {
		return nil, fmt.Errorf("pccrd: probe scopes: %w", err)
	}
	return p, nil
}

// parseScopes decodes probe Scopes text of either version.
func parseScopes(version Version, text string) (tokens []string, ids [][]byte, err error) {
	if version == V1 {
		return parseV1Scopes(text)
	}
	tokens = fieldsXML(text)
	if len(tokens) != 1 {
		return nil, nil, fmt.Errorf("%w: V2 scopes hold %d tokens, want one", ErrMalformed, len(tokens))
	}
	ids, err = decodeV2Scope(tokens[0])
	return tokens, ids, err
}

// tokens returns the scope tokens to send: p.Tokens checked against
// p.SegmentIDs, or canonical ones derived from p.SegmentIDs.
func (p *Probe) tokens() ([]string, error) {
	if len(p.SegmentIDs) == 0 {
		return nil, errors.New("probe without segment IDs")
	}
	if len(p.Tokens) == 0 {
		if p.Version == V2 {
			token, err := encodeV2Scope(p.SegmentIDs)
			return []string{token}, err
		}
		tokens := make([]string, len(p.SegmentIDs))
		for i, id := range p.SegmentIDs {
			var err error
			if tokens[i], err = encodeV1Token(id); err != nil {
				return nil, err
			}
		}
		return tokens, nil
	}
	var text []byte
	for i, t := range p.Tokens {
		if i > 0 {
			text = append(text, ' ')
		}
		text = append(text, t...)
	}
	tokens, ids, err := parseScopes(p.Version, string(text))
	if err != nil || len(tokens) != len(p.Tokens) || !slices.EqualFunc(ids, p.SegmentIDs, bytes.Equal) {
		return nil, errors.New("tokens do not encode the segment IDs")
	}
	return p.Tokens, nil
}

// Marshal encodes the probe in the canonical layout (one element per line,
// prefixes soap, wsa, wsd and PeerDist, upper-case hex for derived V1
// tokens). The output is stable byte for byte.
func (p *Probe) Marshal() ([]byte, error) {
	if !p.Version.valid() {
		return nil, fmt.Errorf("pccrd: marshal probe: unknown version %v", p.Version)
	}
	if err := checkText("MessageID", p.MessageID); err != nil {
		return nil, fmt.Errorf("pccrd: marshal probe: %v", err)
	}
	tokens, err := p.tokens()
	if err != nil {
		return nil, fmt.Errorf("pccrd: marshal probe: %v", err)
	}
	b := make([]byte, 0, 1024)
	b = append(b, envelopeOpen...)
	b = append(b, "<soap:Header>\n"+
		"<wsa:To>"+ToDiscovery+"</wsa:To>\n"+
		"<wsa:Action>"+ActionProbe+"</wsa:Action>\n"+
		"<wsa:MessageID>"...)
	b = appendEscaped(b, p.MessageID)
	b = append(b, "</wsa:MessageID>\n"+
		"</soap:Header>\n"+
		"<soap:Body>\n"+
		"<wsd:Probe>\n"+
		"<wsd:Types>PeerDist:"...)
	b = append(b, p.Version.TypeLocalName()...)
	b = append(b, "</wsd:Types>\n"+
		`<wsd:Scopes MatchBy="`...)
	b = append(b, p.Version.MatchBy()...)
	b = append(b, `">`...)
	for i, t := range tokens {
		if i > 0 {
			b = append(b, ' ')
		}
		b = append(b, t...) // hex or base64: nothing to escape
	}
	b = append(b, "</wsd:Scopes>\n"+
		"</wsd:Probe>\n"+
		"</soap:Body>\n"+
		"</soap:Envelope>\n"...)
	if len(b) > MaxDatagramSize {
		return nil, fmt.Errorf("pccrd: marshal probe: %w: %d bytes", ErrTooLarge, len(b))
	}
	return b, nil
}
