package pccrd

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"strconv"
	"strings"
)

// Element names by namespace, so that paths compare namespace URIs and
// never the prefixes a sender happened to choose.
func soapName(local string) xml.Name { return xml.Name{Space: NamespaceSOAP, Local: local} }
func wsaName(local string) xml.Name  { return xml.Name{Space: NamespaceAddressing, Local: local} }
func wsdName(local string) xml.Name  { return xml.Name{Space: NamespaceDiscovery, Local: local} }
func peerDistName(local string) xml.Name {
	return xml.Name{Space: NamespacePeerDist, Local: local}
}

// headerChild returns the name of a leaf directly inside soap:Header.
func headerChild(path []xml.Name) (xml.Name, bool) {
	if len(path) == 3 && path[0] == soapName("Envelope") && path[1] == soapName("Header") {
		return path[2], true
	}
	return xml.Name{}, false
}

// bodyPath returns the part of path below soap:Body.
func bodyPath(path []xml.Name) ([]xml.Name, bool) {
	if len(path) > 2 && path[0] == soapName("Envelope") && path[1] == soapName("Body") {
		return path[2:], true
	}
	return nil, false
}

// textField is one captured leaf. A message that repeats a field (two
// Actions, two ProbeMatch elements) is ambiguous and therefore malformed.
type textField struct {
	value   string
	present bool
}

func (f *textField) set(what string, leaf *leafElement) error {
	if f.present {
		return fmt.Errorf("%w: repeated %s", ErrMalformed, what)
	}
	f.value, f.present = string(bytes.Trim(leaf.text, xmlSpace)), true
	return nil
}

// header holds the WS-Addressing and WS-Discovery header fields.
type header struct {
	action, messageID, relatesTo textField
	appSequence                  bool
	instanceID, messageNumber    attrValue
}

func (h *header) visit(name xml.Name, leaf *leafElement) error {
	switch name {
	case wsaName("Action"):
		return h.action.set("wsa:Action", leaf)
	case wsaName("MessageID"):
		return h.messageID.set("wsa:MessageID", leaf)
	case wsaName("RelatesTo"):
		return h.relatesTo.set("wsa:RelatesTo", leaf)
	case wsdName("AppSequence"):
		if h.appSequence {
			return fmt.Errorf("%w: repeated wsd:AppSequence", ErrMalformed)
		}
		h.appSequence = true
		var err error
		if h.instanceID, err = leaf.attr("InstanceId"); err != nil {
			return err
		}
		h.messageNumber, err = leaf.attr("MessageNumber")
		return err
	}
	return nil
}

// checkAction separates other WS-Discovery traffic (ErrNotPeerDist) from
// the message the caller wants. WS-Discovery 1.1 uses another wsa namespace
// and therefore arrives here without an Action.
func (h *header) checkAction(want string) error {
	if !h.action.present {
		return fmt.Errorf("%w: no WS-Addressing (2004/08) Action", ErrNotPeerDist)
	}
	if h.action.value != want {
		return fmt.Errorf("%w: action %q", ErrNotPeerDist, h.action.value)
	}
	return nil
}

// typesField records which PeerDist types a wsd:Types list names. The
// QNames are resolved against the namespace declarations in scope.
type typesField struct {
	present bool
	v1, v2  bool
}

func (f *typesField) set(leaf *leafElement) error {
	if f.present {
		return fmt.Errorf("%w: repeated wsd:Types", ErrMalformed)
	}
	f.present = true
	for _, qname := range fieldsXML(string(leaf.text)) {
		name, ok := leaf.scope.resolve(qname)
		if !ok {
			continue // an undeclared prefix names nothing we know
		}
		switch name {
		case peerDistName(localPeerDistData):
			f.v1 = true
		case peerDistName(localPeerDistDataV2):
			f.v2 = true
		}
	}
	return nil
}

// version returns the PeerDist version the Types name, ErrNotPeerDist if
// none.
func (f *typesField) version() (Version, error) {
	switch {
	case f.v1 && f.v2:
		return 0, fmt.Errorf("%w: wsd:Types names both PeerDist versions", ErrMalformed)
	case f.v1:
		return V1, nil
	case f.v2:
		return V2, nil
	case !f.present:
		return 0, fmt.Errorf("%w: no wsd:Types", ErrNotPeerDist)
	}
	return 0, fmt.Errorf("%w: wsd:Types names no PeerDist type", ErrNotPeerDist)
}

// requiredText returns a captured value that must be present and valid.
func requiredText(what string, f textField) (string, error) {
	if !f.present {
		return "", fmt.Errorf("%w: no %s", ErrMalformed, what)
	}
	if err := checkText(what, f.value); err != nil {
		return "", fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return f.value, nil
}

// parseUint parses a required decimal xs:unsignedInt or xs:unsignedLong.
func parseUint(what string, s string, present bool) (uint64, error) {
	if !present {
		return 0, fmt.Errorf("%w: no %s", ErrMalformed, what)
	}
	n, err := strconv.ParseUint(trimXML(s), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: %s %q is not an unsigned integer", ErrMalformed, what, s)
	}
	return n, nil
}

// fieldsXML splits a list at XML white space (strings.Fields would also
// split at Unicode spaces, which XML list types do not).
func fieldsXML(s string) []string { return strings.FieldsFunc(s, isXMLSpace) }

// trimXML removes leading and trailing XML white space.
func trimXML(s string) string { return strings.Trim(s, xmlSpace) }
