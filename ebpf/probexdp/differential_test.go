package probexdp

import (
	"bytes"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/outpost-appliance/outpost/peerdist/pccrd"
	"github.com/outpost-appliance/outpost/peerdist/vectors"
)

// differ runs datagrams through the program with forwarding on (so every
// probe it consumes becomes an event) and holds it to the Go decoder.
type differ struct {
	h                   *harness
	consumed, datagrams int
}

func newDiffer(t testing.TB) *differ {
	h := newHarness(t, Options{RingSize: 1 << 20})
	h.flag(flagForward, true)
	return &differ{h: h}
}

// check fails the test if the program consumed payload but reported other
// segment IDs (or tokens, or MessageID) than pccrd.ParseProbe extracts.
func (d *differ) check(t testing.TB, payload []byte, src string) {
	t.Helper()
	d.datagrams++
	pkt := frame{src: netip4(src), payload: payload}.bytes()
	verdict, err := d.h.p.objs.OutpostProbe.Run(&ebpf.RunOptions{Data: pkt})
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	ev := d.h.eventFor(t)
	switch {
	case verdict == xdpPass && ev == nil:
		return // the socket path decides
	case verdict == xdpPass:
		t.Fatalf("passed and captured %q", payload)
	case ev == nil:
		t.Fatalf("dropped without an event (forwarding is on): %q", payload)
	}
	d.consumed++
	want, err := pccrd.ParseProbe(payload)
	if err != nil {
		t.Fatalf("captured, but the Go decoder says %v:\n%q", err, payload)
	}
	if got := ev.PCCRD(); !reflect.DeepEqual(got, want) {
		t.Fatalf("captured\n%+v\nthe Go decoder reads\n%+v\nfrom %q", got, want, payload)
	}
}

// corpus is the differential test's datagrams: the shared vectors (the
// pccrd fuzz targets' seeds), valid variants in the layouts the fast path
// knows, odd and malformed ones, and systematic mutations of the iPXE
// probe (every truncation, deletion, duplication, and byte replacements).
func corpus(t testing.TB) [][]byte {
	var out [][]byte
	for _, v := range [][2]string{
		{"spec", "pccrd_4.1_v1_probe.xml"}, {"spec", "pccrd_4.2_v2_probe.xml"},
		{"spec", "pccrd_4.3_v1_probematch.xml"}, {"spec", "pccrd_4.4_v2_probematch.xml"},
		{"derived", "pccrd_v1_probe_v1seg.xml"}, {"derived", "pccrd_v1_probematch_v1seg.xml"},
		{"ipxe", "ipxe_probe_v1.xml"},
	} {
		out = append(out, vectors.Read(t, "peerdist-vectors", v[0], v[1]))
	}
	ipxe := string(ipxeProbe(t))
	sub := func(pairs ...string) []byte {
		s := ipxe
		for i := 0; i+1 < len(pairs); i += 2 {
			s = strings.Replace(s, pairs[i], pairs[i+1], 1)
		}
		return []byte(s)
	}
	// Valid and odd variants.
	for _, v := range [][]string{
		{ipxeToken, strings.ToLower(ipxeToken)},
		{ipxeToken, ipxeToken + " " + token(0x11)},
		{ipxeToken, " " + ipxeToken + "\n"},
		{ipxeToken, ipxeToken + ipxeToken},
		{ipxeToken, ipxeToken[:63]},
		{ipxeToken, ipxeToken + "0"},
		{ipxeToken, "aEF1" + ipxeToken[4:]},
		{ipxeToken, ipxeToken + "&#32;" + token(0x11)},
		{ipxeToken, ipxeToken + "<!-- -->"},
		{ipxeToken, "<![CDATA[" + ipxeToken + "]]>"},
		{`<?xml version="1.0" encoding="utf-8"?>`, ""},
		{`<?xml version="1.0" encoding="utf-8"?>`, `<?xml version="1.0" encoding="UTF-8"?>`},
		{`<?xml version="1.0" encoding="utf-8"?>`, `<?xml version="1.0" encoding="latin-1"?>`},
		{`<?xml version="1.0" encoding="utf-8"?>`, `<?xml version='1.0' encoding='utf-8'?>`},
		{`<?xml version="1.0" encoding="utf-8"?>`, " "},
		{"<soap:Header>", "<soap:Header>\r\n\t"},
		{"</soap:Envelope>", "</soap:Envelope >"},
		{"</soap:Envelope>", "</soap:Envelope><x/>"},
		{"<wsd:Scopes MatchBy", "<wsd:Scopes  MatchBy"},
		{` MatchBy="http://schemas.xmlsoap.org/ws/2005/04/discovery/strcmp0"`, ""},
		{"strcmp0", "rfc3986"},
		{"<wsd:Types>PeerDist:PeerDistData</wsd:Types>", "<wsd:Types>PeerDist:PeerDistData</wsd:Types><wsd:Types>PeerDist:PeerDistData</wsd:Types>"},
		{"PeerDist:PeerDistData", "PeerDist:PeerDistDataV2"},
		{"PeerDist:PeerDistData", " PeerDist:PeerDistData "},
		{ipxeMsgID, ""},
		{ipxeMsgID, " " + ipxeMsgID},
		{ipxeMsgID, "urn:uuid:\u00e9"},
		{ipxeMsgID, "x"},
		{ipxeMsgID, "a\"'b"},
		{"http://schemas.microsoft.com/p2p/2007/09/PeerDistributionDiscovery", "http://example.com/"},
		{`xmlns:wsd="http://schemas.xmlsoap.org/ws/2005/04/discovery"`, `xmlns:wsd="http://docs.oasis-open.org/ws-dd/ns/discovery/2009/01"`},
		{"discovery/Probe</wsa:Action>", "discovery/Hello</wsa:Action>"},
		{"<wsa:To>urn:schemas-xmlsoap-org:ws:2005:04:discovery</wsa:To>", ""},
	} {
		out = append(out, sub(v...))
	}
	for n := 1; n <= MaxSegmentIDs+1; n++ {
		var ts []string
		for i := range n {
			tk := token(byte(0x10 * i))
			if i%2 == 1 {
				tk = strings.ToLower(tk)
			}
			ts = append(ts, tk)
		}
		out = append(out, sub(ipxeToken, strings.Join(ts, " \t")))
	}
	for _, version := range []pccrd.Version{pccrd.V1, pccrd.V2} {
		out = append(out, marshalled(t, version, mustHex(ipxeToken)), marshalled(t, version, mustHex(ipxeToken), bytes.Repeat([]byte{7}, 32)))
	}
	out = append(out, marshalled(t, pccrd.V1, bytes.Repeat([]byte{0xab}, 48)), marshalled(t, pccrd.V1, bytes.Repeat([]byte{0xcd}, 64)))
	// Mutations of the real probe.
	p := []byte(ipxe)
	for i := 0; i <= len(p); i++ {
		out = append(out, p[:i])
	}
	for i := range p {
		out = append(out, concat(p[:i], p[i+1:]), concat(p[:i+1], p[i:]))
		for _, c := range []byte{' ', '\n', '<', '>', '&', '"', 'a', 'A', '0', 0, 0xff} {
			if p[i] != c {
				q := bytes.Clone(p)
				q[i] = c
				out = append(out, q)
			}
		}
	}
	rng := rand.New(rand.NewPCG(10, 3702))
	for range 3000 {
		q := bytes.Clone(p)
		for range 1 + rng.IntN(4) {
			q[rng.IntN(len(q))] = byte(rng.IntN(256))
		}
		out = append(out, q)
	}
	return out
}

func concat(a, b []byte) []byte { return append(bytes.Clone(a), b...) }

// The segment IDs the XDP path reports equal what the Go decoder
// extracts, or the program passed the datagram.
func TestDifferential(t *testing.T) {
	d := newDiffer(t)
	for i, payload := range corpus(t) {
		src := "10.61.0.7:49152"
		if i%7 == 0 {
			src = "[fd00:61::7]:49152"
		}
		d.check(t, payload, src)
	}
	if d.consumed < 50 {
		t.Fatalf("only %d of %d datagrams consumed: the corpus does not exercise the fast path", d.consumed, d.datagrams)
	}
	t.Logf("%d datagrams, %d consumed, the rest passed", d.datagrams, d.consumed)
}

// FuzzDifferential is the same property on fuzzed datagrams (go test runs
// the seeds; `make fuzz` explores).
func FuzzDifferential(f *testing.F) {
	for _, c := range corpus(f)[:60] {
		f.Add(c)
	}
	d := newDiffer(f)
	f.Fuzz(func(t *testing.T, payload []byte) {
		if len(payload) > 3000 {
			return // larger than BPF_PROG_RUN takes; the program passes them anyway
		}
		d.check(t, payload, "10.61.0.7:49152")
	})
}
