package pccrd

import (
	"bytes"
	"encoding/base64"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// soapMessage wraps header and body children in a SOAP 1.2 envelope that
// declares the given extra namespaces.
func soapMessage(extraNS, header, body string) []byte {
	return []byte(`<?xml version="1.0" encoding="utf-8"?>` +
		`<soap:Envelope xmlns:soap="` + NamespaceSOAP + `" xmlns:wsa="` + NamespaceAddressing +
		`" xmlns:wsd="` + NamespaceDiscovery + `"` + extraNS + `>` +
		`<soap:Header>` + header + `</soap:Header><soap:Body>` + body + `</soap:Body></soap:Envelope>`)
}

const probeHeader = `<wsa:To>urn:schemas-xmlsoap-org:ws:2005:04:discovery</wsa:To>` +
	`<wsa:Action>http://schemas.xmlsoap.org/ws/2005/04/discovery/Probe</wsa:Action>` +
	`<wsa:MessageID>urn:uuid:0a6dc791-2be6-4991-9af1-454778a1917a</wsa:MessageID>`

func TestNotPeerDist(t *testing.T) {
	probe := readVector(t, "derived", "pccrd_v1_probe_v1seg.xml")
	match := readVector(t, "derived", "pccrd_v1_probematch_v1seg.xml")
	tests := []struct {
		name  string
		data  []byte
		parse func([]byte) error
	}{
		{"printer probe", soapMessage(` xmlns:wsdp="http://schemas.xmlsoap.org/ws/2006/02/devprof"`, probeHeader,
			`<wsd:Probe><wsd:Types>wsdp:Device</wsd:Types></wsd:Probe>`), parseProbeErr},
		{"printer probe with scopes", soapMessage(` xmlns:wprt="http://schemas.microsoft.com/windows/2006/08/wdp/print"`, probeHeader,
			`<wsd:Probe><wsd:Types>wprt:PrintDeviceType</wsd:Types><wsd:Scopes>ldap:///ou=x</wsd:Scopes></wsd:Probe>`), parseProbeErr},
		{"probe for every service", soapMessage("", probeHeader, `<wsd:Probe/>`), parseProbeErr},
		{"hello", soapMessage("", strings.Replace(probeHeader, "discovery/Probe", "discovery/Hello", 1),
			`<wsd:Hello><wsa:EndpointReference><wsa:Address>urn:uuid:1</wsa:Address></wsa:EndpointReference>`+
				`<wsd:MetadataVersion>1</wsd:MetadataVersion></wsd:Hello>`), parseProbeErr},
		{"bye", soapMessage("", strings.Replace(probeHeader, "discovery/Probe", "discovery/Bye", 1),
			`<wsd:Bye><wsa:EndpointReference><wsa:Address>urn:uuid:1</wsa:Address></wsa:EndpointReference></wsd:Bye>`), parseProbeErr},
		{"ws-discovery 1.1 probe", []byte(`<s:Envelope xmlns:s="` + NamespaceSOAP +
			`" xmlns:a="http://www.w3.org/2005/08/addressing" xmlns:d="http://docs.oasis-open.org/ws-dd/ns/discovery/2009/01">` +
			`<s:Header><a:Action>http://docs.oasis-open.org/ws-dd/ns/discovery/2009/01/Probe</a:Action>` +
			`<a:MessageID>urn:uuid:1</a:MessageID></s:Header><s:Body><d:Probe/></s:Body></s:Envelope>`), parseProbeErr},
		{"not soap", []byte(`<root><child/></root>`), parseProbeErr},
		{"PeerDist prefix bound elsewhere", mutate(t, probe, `xmlns:PeerDist="`+NamespacePeerDist+`"`,
			`xmlns:PeerDist="urn:other"`), parseProbeErr},
		{"probe match given to ParseProbe", match, parseProbeErr},
		{"probe given to ParseProbeMatch", probe, parseProbeMatchErr},
		{"probe match for a printer", mutate(t, match, "PeerDist:PeerDistData</wsd:Types>", "wsdp:Device</wsd:Types>"),
			parseProbeMatchErr},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.parse(tt.data)
			if !errors.Is(err, ErrNotPeerDist) || errors.Is(err, ErrMalformed) {
				t.Errorf("err = %v, want ErrNotPeerDist", err)
			}
		})
	}
}

func parseProbeErr(b []byte) error      { _, err := ParseProbe(b); return err }
func parseProbeMatchErr(b []byte) error { _, err := ParseProbeMatch(b); return err }

func TestMalformedProbe(t *testing.T) {
	v1 := readVector(t, "derived", "pccrd_v1_probe_v1seg.xml")
	v2 := readVector(t, "spec", "pccrd_4.2_v2_probe.xml")
	const v1Token = "491B217DBEE2B5F12CA79B015E06F4BBE64F9745BAD7867AEF17DE59927EDCE9"
	v2Token := strings.TrimSpace(string(readVector(t, "spec", "pccrd_v2_probe_scope_2seg.b64")))
	v2Scope := func(raw []byte) []byte {
		return mutate(t, v2, v2Token, base64.StdEncoding.EncodeToString(raw))
	}
	tests := []struct {
		name string
		data []byte
	}{
		{"empty datagram", nil},
		{"not xml", []byte("hello")},
		{"truncated", v1[:len(v1)/2]},
		{"over the UDP limit", append(bytes.Clone(v1), bytes.Repeat([]byte(" "), MaxDatagramSize)...)},
		{"doctype with entity", mutate(t, v1, "<soap:Envelope ", `<!DOCTYPE x [<!ENTITY e "x">]><soap:Envelope `)},
		{"undefined entity", mutate(t, v1, "<wsa:MessageID>", "<wsa:MessageID>&e;")},
		{"invalid utf-8", mutate(t, v1, "<wsa:MessageID>", "<wsa:MessageID>\xff")},
		{"latin-1 declared", mutate(t, v1, `encoding="utf-8"`, `encoding="iso-8859-1"`)},
		{"text after root", append(bytes.Clone(v1), "junk"...)},
		{"second root", append(bytes.Clone(v1), "<x/>"...)},
		{"nested too deep", mutate(t, v1, "<wsd:Probe>", strings.Repeat("<x>", maxDepth)+"<wsd:Probe>")},
		{"too many elements", mutate(t, v1, "<wsd:Probe>", strings.Repeat("<x/>", maxElements)+"<wsd:Probe>")},
		{"empty scopes", mutate(t, v1, ">"+v1Token+"<", "><")},
		{"white-space scopes", mutate(t, v1, ">"+v1Token+"<", "> \n\t <")},
		{"no scopes", mutate(t, mutate(t, v1, v1Token, ""), `<wsd:Scopes MatchBy="`+MatchByStrcmp0+`"></wsd:Scopes>`, "")},
		{"bad hex", mutate(t, v1, v1Token, strings.Replace(v1Token, "4", "G", 1))},
		{"odd hex", mutate(t, v1, v1Token, v1Token+"0")},
		{"30-byte V1 ID", mutate(t, v1, v1Token, v1Token[:60])},
		{"one bad token of two", mutate(t, v1, v1Token, v1Token+" xyz")},
		{"wrong MatchBy", mutate(t, v1, MatchByStrcmp0, MatchByPeerDistV2)},
		{"repeated MatchBy", mutate(t, v1, `MatchBy="`, `MatchBy="x" MatchBy="`)},
		{"no MessageID", mutate(t, v1, "<wsa:MessageID>urn:uuid:00000000-0000-4000-8000-000000000001</wsa:MessageID>", "")},
		{"empty MessageID", mutate(t, v1, "urn:uuid:00000000-0000-4000-8000-000000000001", " ")},
		{"control character in MessageID", mutate(t, v1, "urn:uuid:", "urn:&#x1;uuid:")},
		{"repeated scopes", mutate(t, v1, "</wsd:Probe>", `<wsd:Scopes>`+v1Token+`</wsd:Scopes></wsd:Probe>`)},
		{"repeated action", mutate(t, v1, "</soap:Header>", "<wsa:Action>"+ActionProbe+"</wsa:Action></soap:Header>")},
		{"both versions", mutate(t, v1, "PeerDist:PeerDistData<", "PeerDist:PeerDistData PeerDist:PeerDistDataV2<")},
		{"V2 bad base64", mutate(t, v2, v2Token, "ACAC*"+v2Token[5:])},
		// A valid one-ID scope whose last character sets a padding bit.
		{"V2 non-canonical padding bits", mutate(t, v2, v2Token, strings.Replace(
			strings.TrimSpace(string(readVector(t, "spec", "pccrd_v2_probe_scope_1seg.b64"))), "MQA=", "MQB=", 1))},
		{"V2 two tokens", mutate(t, v2, v2Token, v2Token+" "+v2Token)},
		{"V2 claims 255 IDs", v2Scope(append([]byte{0, 32, 255}, make([]byte, 64)...))},
		{"V2 count too small", v2Scope(append([]byte{0, 32, 1}, make([]byte, 64)...))},
		{"V2 count zero", v2Scope([]byte{0, 32, 0})},
		{"V2 header only", v2Scope([]byte{0, 32})},
		{"V2 hash size 64", v2Scope(append([]byte{0, 64, 1}, make([]byte, 64)...))},
		{"V2 wrong MatchBy", mutate(t, v2, MatchByPeerDistV2, MatchByStrcmp0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := ParseProbe(tt.data)
			if !errors.Is(err, ErrMalformed) || errors.Is(err, ErrNotPeerDist) {
				t.Errorf("err = %v (probe %+v), want ErrMalformed", err, p)
			}
		})
	}
}

func TestMalformedProbeMatch(t *testing.T) {
	v1 := readVector(t, "derived", "pccrd_v1_probematch_v1seg.xml")
	v2 := readVector(t, "spec", "pccrd_4.4_v2_probematch.xml")
	// probeMatch returns the wsd:ProbeMatch element of a reply.
	probeMatch := func(data []byte) string {
		_, inner, _ := bytes.Cut(data, []byte("<wsd:ProbeMatches>"))
		inner, _, _ = bytes.Cut(inner, []byte("</wsd:ProbeMatches>"))
		return string(inner)
	}
	tests := []struct {
		name string
		data []byte
	}{
		{"no BlockCount", mutate(t, v1, "<PeerDist:BlockCount>00000002</PeerDist:BlockCount>", "")},
		{"4-digit BlockCount", mutate(t, v1, ">00000002<", ">0019<")},
		{"non-hex BlockCount", mutate(t, v1, ">00000002<", ">0000000x<")},
		{"SegmentAges in V1", mutate(t, v1, "</PeerDist:PeerDistData>", "<PeerDist:SegmentAges>AA==</PeerDist:SegmentAges></PeerDist:PeerDistData>")},
		{"BlockCount in V2", mutate(t, v2, "</PeerDist:PeerDistData>", "<PeerDist:BlockCount>00000001</PeerDist:BlockCount></PeerDist:PeerDistData>")},
		{"bad V1 token", mutate(t, v1, "491B217D", "491B217X")},
		{"empty scopes", mutate(t, v2, "/////////////w==", "")},
		{"no scopes", mutate(t, v2, "<wsd:Scopes>/////////////w==</wsd:Scopes>", "")},
		{"V2 availability not base64", mutate(t, v2, "/////////////w==", "////-")},
		{"V2 two availability tokens", mutate(t, v2, "/////////////w==", "8A== 8A==")},
		{"SegmentAges not base64", mutate(t, v2, "AAEDAgBg6gACYOoA", "AAEDAgBg6gACYOo")},
		{"empty SegmentAges", mutate(t, v2, "AAEDAgBg6gACYOoA", "")},
		{"no XAddrs", mutate(t, v1, "<wsd:XAddrs>192.0.2.10:80</wsd:XAddrs>", "")},
		{"empty XAddrs", mutate(t, v1, "192.0.2.10:80<", "<")},
		{"XAddr with scheme and path", mutate(t, v1, "192.0.2.10:80<", "http://192.0.2.10:80/x<")},
		{"XAddr host name", mutate(t, v1, "192.0.2.10:80<", "peer.example:80<")},
		{"XAddr port 0", mutate(t, v1, "192.0.2.10:80<", "192.0.2.10:0<")},
		{"two ProbeMatch elements", mutate(t, v1, "</wsd:ProbeMatches>", probeMatch(v1)+"</wsd:ProbeMatches>")},
		{"no AppSequence", mutate(t, v1, `<wsd:AppSequence InstanceId="1700000000" MessageNumber="1"/>`, "")},
		{"no InstanceId", mutate(t, v1, `InstanceId="1700000000" `, "")},
		{"negative MessageNumber", mutate(t, v1, `MessageNumber="1"`, `MessageNumber="-1"`)},
		{"huge InstanceId", mutate(t, v1, `InstanceId="1700000000"`, `InstanceId="18446744073709551616"`)},
		{"no MetadataVersion", mutate(t, v1, "<wsd:MetadataVersion>1</wsd:MetadataVersion>", "")},
		{"MetadataVersion over 32 bits", mutate(t, v1, "<wsd:MetadataVersion>1<", "<wsd:MetadataVersion>4294967296<")},
		{"no RelatesTo", mutate(t, v1, "<wsa:RelatesTo>urn:uuid:00000000-0000-4000-8000-000000000001</wsa:RelatesTo>", "")},
		{"no endpoint address", mutate(t, v1, "<wsa:Address>urn:uuid:00000000-0000-4000-8000-0000000000aa</wsa:Address>", "")},
		{"doctype", mutate(t, v1, "<soap:Envelope ", `<!DOCTYPE soap:Envelope><soap:Envelope `)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := ParseProbeMatch(tt.data)
			if !errors.Is(err, ErrMalformed) || errors.Is(err, ErrNotPeerDist) {
				t.Errorf("err = %v (match %+v), want ErrMalformed", err, m)
			}
		})
	}
}

// Prefixes are free, values may be padded with white space (the spec's
// printed examples are), comments and CDATA are XML like any other.
func TestParseAcceptsAnyPrefixes(t *testing.T) {
	probe := readVector(t, "derived", "pccrd_v1_probe_v1seg.xml")
	want, err := ParseProbe(probe)
	if err != nil {
		t.Fatal(err)
	}
	renamed := string(probe)
	for _, r := range [][2]string{{"soap:", "s:"}, {"wsa:", "a:"}, {"wsd:", "d:"}, {"PeerDist:", "p:"},
		{"xmlns:soap", "xmlns:s"}, {"xmlns:wsa", "xmlns:a"}, {"xmlns:wsd", "xmlns:d"}, {"xmlns:PeerDist", "xmlns:p"}} {
		renamed = strings.ReplaceAll(renamed, r[0], r[1])
	}
	// Default namespaces, declarations on inner elements, padding, a
	// comment and CDATA, no MatchBy, no prolog.
	const token = "491B217DBEE2B5F12CA79B015E06F4BBE64F9745BAD7867AEF17DE59927EDCE9"
	inner := `<Envelope xmlns="` + NamespaceSOAP + `"><!-- c --><Header>` +
		`<Action xmlns="` + NamespaceAddressing + `"> ` + ActionProbe + "\n</Action>" +
		`<x:MessageID xmlns:x="` + NamespaceAddressing + `"><![CDATA[urn:uuid:00000000-0000-4000-8000-000000000001]]></x:MessageID>` +
		`</Header><Body><Probe xmlns="` + NamespaceDiscovery + `" xmlns:pd="` + NamespacePeerDist + `">` +
		"<Types>\n  pd:PeerDistData\n</Types><Scopes>\n" + token + "\n</Scopes></Probe></Body></Envelope>"
	for name, data := range map[string]string{"renamed": renamed, "default namespaces": inner} {
		got, err := ParseProbe([]byte(data))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: got %+v, want %+v", name, got, want)
		}
	}

	match := readVector(t, "spec", "pccrd_4.4_v2_probematch.xml")
	wantMatch, err := ParseProbeMatch(match)
	if err != nil {
		t.Fatal(err)
	}
	spaced := string(match)
	for _, tag := range []string{"wsa:MessageID", "wsa:RelatesTo", "wsa:Address", "wsd:Types", "wsd:Scopes",
		"wsd:XAddrs", "wsd:MetadataVersion", "PeerDist:SegmentAges"} {
		spaced = strings.ReplaceAll(spaced, "<"+tag+">", "<"+tag+"> \n")
		spaced = strings.ReplaceAll(spaced, "</"+tag+">", "\t</"+tag+">")
	}
	if got, err := ParseProbeMatch([]byte(spaced)); err != nil || !reflect.DeepEqual(got, wantMatch) {
		t.Errorf("padded values: %+v, %v", got, err)
	}
}
