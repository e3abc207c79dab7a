package pccrd

import (
	"errors"
	"reflect"
	"testing"
)

// addVectorSeeds seeds a fuzz target with every discovery message of the
// shared vectors.
func addVectorSeeds(f *testing.F) {
	for _, v := range xmlVectors() {
		f.Add(readVector(f, v.dir, v.name))
	}
}

// Properties: no panic; every error is classified; whatever decodes
// marshals again and decodes to the same value.
func FuzzParseProbe(f *testing.F) {
	addVectorSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParseProbe(data)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrNotPeerDist) {
				t.Fatalf("unclassified error: %v", err)
			}
			return
		}
		out, err := p.Marshal()
		if err != nil {
			t.Fatalf("Marshal of a decoded probe: %v\n%+v", err, p)
		}
		again, err := ParseProbe(out)
		if err != nil {
			t.Fatalf("ParseProbe of our output: %v\n%s", err, out)
		}
		if !reflect.DeepEqual(again, p) {
			t.Fatalf("round trip changed the probe\ngot  %+v\nwant %+v", again, p)
		}
	})
}

func FuzzParseProbeMatch(f *testing.F) {
	addVectorSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseProbeMatch(data)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrNotPeerDist) {
				t.Fatalf("unclassified error: %v", err)
			}
			return
		}
		if m.Version == V1 && len(m.BlockCounts) != len(m.Tokens) {
			// Decoded leniently (the spec's own §4.3 example), but Marshal
			// refuses to send it: iPXE needs one count per token.
			if _, err := m.Marshal(); err == nil {
				t.Fatalf("Marshal sent %d counts for %d tokens", len(m.BlockCounts), len(m.Tokens))
			}
			return
		}
		out, err := m.Marshal()
		if err != nil {
			t.Fatalf("Marshal of a decoded probe match: %v\n%+v", err, m)
		}
		again, err := ParseProbeMatch(out)
		if err != nil {
			t.Fatalf("ParseProbeMatch of our output: %v\n%s", err, out)
		}
		if !reflect.DeepEqual(again, m) {
			t.Fatalf("round trip changed the probe match\ngot  %+v\nwant %+v", again, m)
		}
	})
}
