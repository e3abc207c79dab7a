package pccrd

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

// The derived files are our own canonical encoding; the spec examples that
// carry consistent data happen to share the layout. Marshal must reproduce
// all of them byte for byte.
func TestMarshalReproducesVectorsExactly(t *testing.T) {
	for _, f := range []vectorFile{
		{"derived", "pccrd_v1_probe_v1seg.xml"},
		{"derived", "pccrd_v1_probematch_v1seg.xml"},
		{"spec", "pccrd_4.1_v1_probe.xml"},
		{"spec", "pccrd_4.2_v2_probe.xml"},
		{"spec", "pccrd_4.4_v2_probematch.xml"},
	} {
		t.Run(f.name, func(t *testing.T) {
			want := readVector(t, f.dir, f.name)
			got, err := decodeAndMarshal(want)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("Marshal differs from the vector\ngot:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

// decodeAndMarshal parses a probe or probe match and marshals it again.
func decodeAndMarshal(datagram []byte) ([]byte, error) {
	if p, err := ParseProbe(datagram); err == nil {
		return p.Marshal()
	}
	m, err := ParseProbeMatch(datagram)
	if err != nil {
		return nil, err
	}
	return m.Marshal()
}

// Every vector survives decode → encode → decode. The spec's V1 reply
// (§4.3) has one block count for two tokens; Marshal refuses to send that
// (iPXE would reject it, §9 row 19), which is checked instead.
func TestVectorsDecodeEncodeDecode(t *testing.T) {
	for _, f := range xmlVectors() {
		t.Run(f.name, func(t *testing.T) {
			data := readVector(t, f.dir, f.name)
			if !isProbeMatchVector(f.name) {
				p, err := ParseProbe(data)
				if err != nil {
					t.Fatal(err)
				}
				assertProbeRoundTrip(t, p, p)
				return
			}
			m, err := ParseProbeMatch(data)
			if err != nil {
				t.Fatal(err)
			}
			if len(m.Tokens) != len(m.BlockCounts) {
				if _, err := m.Marshal(); err == nil || !strings.Contains(err.Error(), "block counts") {
					t.Errorf("Marshal of %d tokens with %d counts: err = %v, want a refusal", len(m.Tokens), len(m.BlockCounts), err)
				}
				return
			}
			assertProbeMatchRoundTrip(t, m, m)
		})
	}
}

func assertProbeRoundTrip(t *testing.T, p, want *Probe) {
	t.Helper()
	data, err := p.Marshal()
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	got, err := ParseProbe(data)
	if err != nil {
		t.Fatalf("ParseProbe of our own output: %v\n%s", err, data)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("round trip changed the probe\ngot  %+v\nwant %+v", got, want)
	}
}

func assertProbeMatchRoundTrip(t *testing.T, m, want *ProbeMatch) {
	t.Helper()
	data, err := m.Marshal()
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	got, err := ParseProbeMatch(data)
	if err != nil {
		t.Fatalf("ParseProbeMatch of our own output: %v\n%s", err, data)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("round trip changed the probe match\ngot  %+v\nwant %+v", got, want)
	}
}

func TestRandomProbesRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(2024, 4))
	for i := range 500 {
		p := randomProbe(rng)
		want := *p
		if want.Tokens == nil {
			want.Tokens = canonicalTokens(t, p)
		}
		t.Run(fmt.Sprint(i), func(t *testing.T) { assertProbeRoundTrip(t, p, &want) })
	}
}

func TestRandomProbeMatchesRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(2024, 5))
	for i := range 500 {
		m := randomProbeMatch(rng)
		want := *m
		if m.Version == V2 {
			// The bit array carries four entries per byte: padding follows.
			want.Availability = append(append([]Availability(nil), m.Availability...),
				make([]Availability, (4-len(m.Availability)%4)%4)...)
		}
		t.Run(fmt.Sprint(i), func(t *testing.T) { assertProbeMatchRoundTrip(t, m, &want) })
	}
}

// Free text is escaped and comes back unchanged.
func TestMarshalEscapesText(t *testing.T) {
	odd := `urn:x:<a href="&amp;">'b'</a>` + "\r\n\tü\U0001F600 ]]>"
	p := &Probe{MessageID: odd, Version: V1, SegmentIDs: [][]byte{make([]byte, 32)}}
	want := *p
	want.Tokens = canonicalTokens(t, p)
	assertProbeRoundTrip(t, p, &want)

	m := &ProbeMatch{MessageID: odd, RelatesTo: odd, EndpointAddress: odd, Version: V2,
		Availability: []Availability{1, 2, 3, 0}, XAddrs: []string{"[fe80::1%eth0]:80"}}
	assertProbeMatchRoundTrip(t, m, m)
}

func canonicalTokens(t *testing.T, p *Probe) []string {
	t.Helper()
	q := *p
	q.Tokens = nil
	tokens, err := q.tokens()
	if err != nil {
		t.Fatal(err)
	}
	return tokens
}

func randomBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

func randomMessageID(rng *rand.Rand) string {
	b := randomBytes(rng, 16)
	return fmt.Sprintf("urn:uuid:%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

func randomProbe(rng *rand.Rand) *Probe {
	p := &Probe{MessageID: randomMessageID(rng), Version: V1}
	if rng.IntN(2) == 0 {
		p.Version = V2
		for range 1 + rng.IntN(40) {
			p.SegmentIDs = append(p.SegmentIDs, randomBytes(rng, 32))
		}
		return p
	}
	sizes := []int{32, 48, 64}
	for range 1 + rng.IntN(6) {
		p.SegmentIDs = append(p.SegmentIDs, randomBytes(rng, sizes[rng.IntN(3)]))
	}
	if rng.IntN(2) == 0 {
		// Tokens as a client may spell them: either case per token.
		for _, id := range p.SegmentIDs {
			token := hex.EncodeToString(id)
			if rng.IntN(2) == 0 {
				token = strings.ToUpper(token)
			}
			p.Tokens = append(p.Tokens, token)
		}
	}
	return p
}

func randomXAddr(rng *rand.Rand) string {
	port := uint16(1 + rng.IntN(65535))
	if rng.IntN(2) == 0 {
		return XAddr(netip.AddrPortFrom(netip.AddrFrom4([4]byte(randomBytes(rng, 4))), port))
	}
	return XAddr(netip.AddrPortFrom(netip.AddrFrom16([16]byte(randomBytes(rng, 16))), port))
}

func randomProbeMatch(rng *rand.Rand) *ProbeMatch {
	m := &ProbeMatch{
		MessageID:       randomMessageID(rng),
		RelatesTo:       randomMessageID(rng),
		InstanceID:      rng.Uint64(),
		MessageNumber:   rng.Uint64(),
		EndpointAddress: randomMessageID(rng),
		MetadataVersion: rng.Uint32(),
	}
	for range 1 + rng.IntN(3) {
		m.XAddrs = append(m.XAddrs, randomXAddr(rng))
	}
	if rng.IntN(2) == 0 {
		m.Version = V1
		for range 1 + rng.IntN(6) {
			token := hex.EncodeToString(randomBytes(rng, []int{32, 48, 64}[rng.IntN(3)]))
			if rng.IntN(2) == 0 {
				token = strings.ToUpper(token)
			}
			m.Tokens = append(m.Tokens, token)
			m.BlockCounts = append(m.BlockCounts, rng.Uint32())
		}
		return m
	}
	m.Version = V2
	for range 1 + rng.IntN(60) {
		m.Availability = append(m.Availability, Availability(rng.IntN(4)))
	}
	if rng.IntN(3) > 0 {
		m.SegmentAges = randomBytes(rng, 1+rng.IntN(40))
	}
	return m
}
