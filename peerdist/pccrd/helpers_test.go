package pccrd

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/outpost-appliance/outpost/peerdist/vectors"
)

// readVector reads a file of the shared peerdist-vectors set.
func readVector(tb testing.TB, dir, name string) []byte {
	tb.Helper()
	return vectors.Read(tb, "peerdist-vectors", dir, name)
}

// readB64 reads a .b64 vector: the exact base64 text used on the wire.
func readB64(tb testing.TB, dir, name string) (text string, raw []byte) {
	tb.Helper()
	text = strings.TrimSpace(string(readVector(tb, dir, name)))
	raw, err := base64.StdEncoding.DecodeString(text)
	if err != nil {
		tb.Fatalf("%s/%s: %v", dir, name, err)
	}
	return text, raw
}

// examplesDecoded is spec/pccrd_examples_decoded.json: hex of the four
// base64 examples of MS-PCCRD.
func examplesDecoded(tb testing.TB) map[string][]byte {
	tb.Helper()
	var hexes map[string]string
	vectors.JSON(tb, &hexes, "peerdist-vectors", "spec", "pccrd_examples_decoded.json")
	out := make(map[string][]byte, len(hexes))
	for k, v := range hexes {
		out[k] = vectors.Hex(tb, v)
	}
	return out
}

// iisSegmentIDs returns the real segment IDs (HoHoDk) of the IIS content
// information in ipxe/iis85_expected.json: one V1 ID and two V2 IDs.
func iisSegmentIDs(tb testing.TB) (v1 []byte, v2 [][]byte) {
	tb.Helper()
	type segments struct {
		Segments []struct {
			HoHoDk string `json:"hohodk"`
		} `json:"segments"`
	}
	var expected struct{ V1, V2 segments }
	vectors.JSON(tb, &expected, "peerdist-vectors", "ipxe", "iis85_expected.json")
	if len(expected.V1.Segments) != 1 || len(expected.V2.Segments) != 2 {
		tb.Fatalf("iis85_expected.json: %d V1 and %d V2 segments, want 1 and 2",
			len(expected.V1.Segments), len(expected.V2.Segments))
	}
	for _, s := range expected.V2.Segments {
		v2 = append(v2, vectors.Hex(tb, s.HoHoDk))
	}
	return vectors.Hex(tb, expected.V1.Segments[0].HoHoDk), v2
}

// vectorFile names a file of peerdist-vectors.
type vectorFile struct{ dir, name string }

// xmlVectors lists every discovery message of the shared set.
func xmlVectors() []vectorFile {
	return []vectorFile{
		{"spec", "pccrd_4.1_v1_probe.xml"},
		{"spec", "pccrd_4.2_v2_probe.xml"},
		{"spec", "pccrd_4.3_v1_probematch.xml"},
		{"spec", "pccrd_4.4_v2_probematch.xml"},
		{"derived", "pccrd_v1_probe_v1seg.xml"},
		{"derived", "pccrd_v1_probematch_v1seg.xml"},
		{"ipxe", "ipxe_probe_v1.xml"},
	}
}

func isProbeMatchVector(name string) bool { return strings.Contains(name, "probematch") }

// repeat returns n copies of v.
func repeat[T any](v T, n int) []T {
	out := make([]T, n)
	for i := range out {
		out[i] = v
	}
	return out
}
