package pccrd

import (
	"bytes"
	"net/netip"
	"net/url"
	"strings"
	"testing"
)

// ipxeValues mimics iPXE's peerdist_discovery_reply_values: find the first
// literal "<tag>", then the first "</tag>" after it, and split the text in
// between at white space. No XML parsing, so prefixes and the absence of
// attributes matter.
func ipxeValues(reply, tag string) ([]string, bool) {
	_, rest, ok := strings.Cut(reply, "<"+tag+">")
	if !ok {
		return nil, false
	}
	text, _, ok := strings.Cut(rest, "</"+tag+">")
	if !ok {
		return nil, false
	}
	return strings.Fields(text), true
}

// TestIPXEAcceptsProbeMatch answers probes the way the subnet leader will
// and checks every rule of docs/protocols.md §10 on the bytes, with plain
// string searches as iPXE does.
func TestIPXEAcceptsProbeMatch(t *testing.T) {
	ipxeProbe, err := ParseProbe(readVector(t, "ipxe", "ipxe_probe_v1.xml"))
	if err != nil {
		t.Fatal(err)
	}
	lowerProbe := *ipxeProbe
	lowerProbe.Tokens = []string{strings.ToLower(ipxeProbe.Tokens[0])}
	twoSegments := &Probe{MessageID: NewMessageID(), Version: V1,
		SegmentIDs: [][]byte{bytes.Repeat([]byte{0xAB}, 32), bytes.Repeat([]byte{0xCD}, 48)}}
	if twoSegments.Tokens, err = twoSegments.tokens(); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name   string
		probe  *Probe
		counts []uint32
		addrs  []netip.AddrPort
	}{
		{"ipxe probe", ipxeProbe, []uint32{2}, []netip.AddrPort{netip.MustParseAddrPort("192.0.2.10:80")}},
		{"lower-case tokens echoed", &lowerProbe, []uint32{0x2A}, []netip.AddrPort{netip.MustParseAddrPort("192.0.2.10:1337")}},
		{"two segments, one missing", twoSegments, []uint32{0xFFFFFFFF, 0}, []netip.AddrPort{
			netip.MustParseAddrPort("[::ffff:192.0.2.10]:80"), netip.MustParseAddrPort("[2001:db8::10]:80")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := &ProbeMatch{
				MessageID: NewMessageID(), RelatesTo: tt.probe.MessageID,
				InstanceID: 1700000000, MessageNumber: 7,
				EndpointAddress: "urn:uuid:00000000-0000-4000-8000-0000000000aa",
				Version:         V1, Tokens: tt.probe.Tokens, BlockCounts: tt.counts,
				MetadataVersion: 2,
			}
			for _, ap := range tt.addrs {
				m.XAddrs = append(m.XAddrs, XAddr(ap))
			}
			data, err := m.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			checkIPXERules(t, string(data), tt.probe.Tokens, tt.counts, tt.addrs)
		})
	}
}

func checkIPXERules(t *testing.T, reply string, tokens []string, counts []uint32, addrs []netip.AddrPort) {
	t.Helper()
	if len(reply) > MaxDatagramSize {
		t.Errorf("reply of %d bytes does not fit a datagram", len(reply))
	}
	// One ProbeMatch per datagram: iPXE only reads the first of each tag.
	if n := strings.Count(reply, "<wsd:ProbeMatch>"); n != 1 {
		t.Errorf("%d <wsd:ProbeMatch> elements, want 1", n)
	}
	// Literal tags with exactly these prefixes and no attributes.
	for _, tag := range []string{"wsd:Scopes", "wsd:XAddrs", "PeerDist:BlockCount"} {
		if strings.Count(reply, "<"+tag+">") != 1 || strings.Count(reply, "</"+tag+">") != 1 {
			t.Errorf("want exactly one literal <%s>…</%s>", tag, tag)
		}
		if strings.Contains(reply, "<"+tag+" ") {
			t.Errorf("<%s> carries attributes", tag)
		}
	}
	if strings.Contains(reply, "MatchBy") {
		t.Errorf("a reply must not carry MatchBy")
	}

	scopes, _ := ipxeValues(reply, "wsd:Scopes")
	if strings.Join(scopes, " ") != strings.Join(tokens, " ") {
		t.Errorf("Scopes %q, want the probe's tokens verbatim %q", scopes, tokens)
	}

	// BlockCount: 8 hex digits per scope, concatenated, no white space.
	_, rest, _ := strings.Cut(reply, "<PeerDist:BlockCount>")
	raw, _, _ := strings.Cut(rest, "</PeerDist:BlockCount>")
	if len(raw) != 8*len(tokens) {
		t.Errorf("BlockCount %q: %d characters for %d scopes, want 8 each", raw, len(raw), len(tokens))
	}
	if strings.Trim(raw, "0123456789ABCDEF") != "" {
		t.Errorf("BlockCount %q is not upper-case hex without separators", raw)
	}
	for i := 0; i+8 <= len(raw) && i/8 < len(counts); i += 8 {
		if zero := raw[i:i+8] == "00000000"; zero != (counts[i/8] == 0) {
			t.Errorf("BlockCount group %d = %s for count %d", i/8, raw[i:i+8], counts[i/8])
		}
	}

	// XAddrs: host:port, no scheme, no path, used verbatim in a URL.
	xaddrs, _ := ipxeValues(reply, "wsd:XAddrs")
	if len(xaddrs) != len(addrs) {
		t.Fatalf("XAddrs %q, want %d entries", xaddrs, len(addrs))
	}
	for i, x := range xaddrs {
		if strings.Contains(x, "/") {
			t.Errorf("XAddr %q has a scheme or path", x)
		}
		u, err := url.Parse("http://" + x + "/116B50EB-ECE2-41ac-8429-9F9E963361B7/")
		if err != nil {
			t.Errorf("iPXE's URL for %q does not parse: %v", x, err)
			continue
		}
		want := netip.AddrPortFrom(addrs[i].Addr().Unmap(), addrs[i].Port())
		if got, err := netip.ParseAddrPort(u.Host); err != nil || got != want {
			t.Errorf("URL host %q = %v, %v; want %v", u.Host, got, err, want)
		}
	}
}
