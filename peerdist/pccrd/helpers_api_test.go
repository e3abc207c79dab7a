package pccrd

import (
	"bytes"
	"errors"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"testing"
)

func TestXAddr(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want string
	}{
		{"192.0.2.10:80", "192.0.2.10:80"},
		{"[::ffff:192.0.2.10]:1337", "192.0.2.10:1337"}, // IPv4 clients need plain IPv4
		{"[2001:db8::1]:80", "[2001:db8::1]:80"},
		{"[fe80::1%eth0]:80", "[fe80::1%eth0]:80"},
	} {
		got := XAddr(netip.MustParseAddrPort(tt.in))
		if got != tt.want {
			t.Errorf("XAddr(%s) = %q, want %q", tt.in, got, tt.want)
		}
		if ap, err := ParseXAddr(got); err != nil || XAddr(ap) != got {
			t.Errorf("ParseXAddr(%q) = %v, %v", got, ap, err)
		}
	}
}

func TestParseXAddr(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want string // "" = error
	}{
		{"157.59.141.183:54321", "157.59.141.183:54321"},
		{"192.0.2.10", "192.0.2.10:80"}, // iPXE: no port means 80
		{"[2001:db8::1]", "[2001:db8::1]:80"},
		{"[2001:db8::1]:8080", "[2001:db8::1]:8080"},
		{"2001:db8::1", ""}, // IPv6 needs brackets
		{"[192.0.2.1]", ""},
		{"192.0.2.10:0", ""},
		{"192.0.2.10:65536", ""},
		{"http://192.0.2.10:80", ""},
		{"192.0.2.10:80/path", ""},
		{"peer.example:80", ""},
		{"", ""},
	} {
		ap, err := ParseXAddr(tt.in)
		if tt.want == "" {
			if err == nil {
				t.Errorf("ParseXAddr(%q) = %v, want an error", tt.in, ap)
			}
			continue
		}
		if err != nil || ap != netip.MustParseAddrPort(tt.want) {
			t.Errorf("ParseXAddr(%q) = %v, %v; want %s", tt.in, ap, err, tt.want)
		}
	}
}

func TestNewMessageID(t *testing.T) {
	uuid4 := regexp.MustCompile(`^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	seen := map[string]bool{}
	for range 100 {
		id := NewMessageID()
		if !uuid4.MatchString(id) {
			t.Fatalf("%q is not a urn:uuid of a version 4 UUID", id)
		}
		if seen[id] {
			t.Fatalf("%q repeated", id)
		}
		seen[id] = true
	}
}

func TestAvailabilityPacking(t *testing.T) {
	for _, tt := range []struct {
		entries []Availability
		packed  []byte
	}{
		{nil, []byte{}},
		{[]Availability{FullyAvailable}, []byte{0xC0}},
		{[]Availability{PartiallyAvailable, NotAvailable, FullyAvailable, 0b01}, []byte{0x8D}},
		{[]Availability{NotAvailable, NotAvailable, NotAvailable, NotAvailable, PartiallyAvailable}, []byte{0x00, 0x80}},
	} {
		got, err := PackAvailability(tt.entries)
		if err != nil || !bytes.Equal(got, tt.packed) {
			t.Errorf("PackAvailability(%v) = %x, %v; want %x", tt.entries, got, err, tt.packed)
		}
		unpacked := UnpackAvailability(tt.packed)
		if len(unpacked) != 4*len(tt.packed) || !slices.Equal(unpacked[:len(tt.entries)], tt.entries) ||
			!allNone(unpacked[len(tt.entries):]) {
			t.Errorf("UnpackAvailability(%x) = %v", tt.packed, unpacked)
		}
	}
	if _, err := PackAvailability([]Availability{4}); err == nil {
		t.Errorf("PackAvailability accepted a 3-bit value")
	}
	if a := PartiallyAvailable; !a.HasSome() || a.HasAll() {
		t.Errorf("PartiallyAvailable bits wrong")
	}
	if a := FullyAvailable; !a.HasSome() || !a.HasAll() {
		t.Errorf("FullyAvailable bits wrong")
	}
}

func TestVersionNames(t *testing.T) {
	if V1.TypeLocalName() != "PeerDistData" || V1.MatchBy() != MatchByStrcmp0 || V1.String() != "V1" {
		t.Errorf("V1: %s %s %s", V1.TypeLocalName(), V1.MatchBy(), V1)
	}
	if V2.TypeLocalName() != "PeerDistDataV2" || V2.MatchBy() != MatchByPeerDistV2 || V2.String() != "V2" {
		t.Errorf("V2: %s %s %s", V2.TypeLocalName(), V2.MatchBy(), V2)
	}
}

func TestMarshalRefusesInvalid(t *testing.T) {
	id32 := make([]byte, 32)
	okProbe := func() *Probe { return &Probe{MessageID: "urn:uuid:1", Version: V1, SegmentIDs: [][]byte{id32}} }
	probes := []struct {
		name   string
		change func(*Probe)
	}{
		{"no version", func(p *Probe) { p.Version = 0 }},
		{"no MessageID", func(p *Probe) { p.MessageID = "" }},
		{"padded MessageID", func(p *Probe) { p.MessageID = " urn:uuid:1" }},
		{"NUL in MessageID", func(p *Probe) { p.MessageID = "urn:\x00" }},
		{"invalid UTF-8 MessageID", func(p *Probe) { p.MessageID = "urn:\xff" }},
		{"no segment IDs", func(p *Probe) { p.SegmentIDs = nil }},
		{"V1 ID of 20 bytes", func(p *Probe) { p.SegmentIDs = [][]byte{make([]byte, 20)} }},
		{"V2 ID of 64 bytes", func(p *Probe) { p.Version, p.SegmentIDs = V2, [][]byte{make([]byte, 64)} }},
		{"V2 with 256 IDs", func(p *Probe) { p.Version, p.SegmentIDs = V2, repeat(id32, 256) }},
		{"tokens for other IDs", func(p *Probe) { p.Tokens = []string{strings.Repeat("01", 32)} }},
		{"token with a space", func(p *Probe) { p.Tokens = []string{strings.Repeat("00", 16) + " " + strings.Repeat("00", 16)} }},
		{"two V2 tokens", func(p *Probe) {
			token, _ := encodeV2Scope([][]byte{id32})
			p.Version, p.Tokens = V2, []string{token, token}
		}},
	}
	for _, tt := range probes {
		p := okProbe()
		tt.change(p)
		if data, err := p.Marshal(); err == nil {
			t.Errorf("probe %s: Marshal succeeded:\n%s", tt.name, data)
		}
	}
	big := okProbe()
	big.SegmentIDs = repeat(make([]byte, 64), 600)
	if _, err := big.Marshal(); !errors.Is(err, ErrTooLarge) {
		t.Errorf("probe over the UDP limit: err = %v, want ErrTooLarge", err)
	}

	okMatch := func() *ProbeMatch {
		return &ProbeMatch{MessageID: "urn:uuid:2", RelatesTo: "urn:uuid:1", EndpointAddress: "urn:uuid:3",
			Version: V1, Tokens: []string{strings.Repeat("AB", 32)}, BlockCounts: []uint32{1},
			XAddrs: []string{"192.0.2.10:80"}, MetadataVersion: 2}
	}
	if _, err := okMatch().Marshal(); err != nil {
		t.Fatalf("valid match: %v", err)
	}
	matches := []struct {
		name   string
		change func(*ProbeMatch)
	}{
		{"no version", func(m *ProbeMatch) { m.Version = 3 }},
		{"no RelatesTo", func(m *ProbeMatch) { m.RelatesTo = "" }},
		{"no endpoint", func(m *ProbeMatch) { m.EndpointAddress = "" }},
		{"no XAddrs", func(m *ProbeMatch) { m.XAddrs = nil }},
		{"XAddr with scheme", func(m *ProbeMatch) { m.XAddrs = []string{"http://192.0.2.10/"} }},
		{"XAddr with space", func(m *ProbeMatch) { m.XAddrs = []string{"[fe80::1%a b]:80"} }},
		{"no tokens", func(m *ProbeMatch) { m.Tokens, m.BlockCounts = nil, nil }},
		{"fewer counts", func(m *ProbeMatch) { m.Tokens = append(m.Tokens, m.Tokens[0]) }},
		{"more counts", func(m *ProbeMatch) { m.BlockCounts = append(m.BlockCounts, 1) }},
		{"bad token", func(m *ProbeMatch) { m.Tokens = []string{"<wsd:Scopes>"} }},
		{"V2 fields in V1", func(m *ProbeMatch) { m.SegmentAges = []byte{1} }},
		{"V1 fields in V2", func(m *ProbeMatch) { m.Version, m.Availability = V2, []Availability{FullyAvailable} }},
		{"V2 without entries", func(m *ProbeMatch) { m.Version, m.Tokens, m.BlockCounts = V2, nil, nil }},
		{"V2 entry over 2 bits", func(m *ProbeMatch) {
			m.Version, m.Tokens, m.BlockCounts, m.Availability = V2, nil, nil, []Availability{7}
		}},
	}
	for _, tt := range matches {
		m := okMatch()
		tt.change(m)
		if data, err := m.Marshal(); err == nil {
			t.Errorf("match %s: Marshal succeeded:\n%s", tt.name, data)
		}
	}
}
