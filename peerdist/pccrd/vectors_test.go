package pccrd

import (
	"bytes"
	"encoding/hex"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/outpost-appliance/outpost/peerdist/vectors"
)

// Expected decodes come from the README of peerdist-vectors (§2 spec, §3
// derived, §4 ipxe) and from the decoded JSON and hex files beside them.

func TestProbeVectors(t *testing.T) {
	v1ID, _ := iisSegmentIDs(t)
	examples := examplesDecoded(t)
	spec2segText, spec2segRaw := readB64(t, "spec", "pccrd_v2_probe_scope_2seg.b64")
	if !bytes.Equal(spec2segRaw, examples["pccrd_v2_probe_scope_2seg"]) {
		t.Fatalf("pccrd_v2_probe_scope_2seg.b64 disagrees with pccrd_examples_decoded.json")
	}
	specZero := append([]byte{0x02}, make([]byte, 63)...) // §4.1: "02" and 126 zeros
	tests := []struct {
		file vectorFile
		want Probe
	}{
		{vectorFile{"spec", "pccrd_4.1_v1_probe.xml"}, Probe{
			MessageID:  "urn:uuid:91528b47-b96d-4e30-981f-308c0586926f",
			Version:    V1,
			SegmentIDs: [][]byte{specZero},
			Tokens:     []string{"02" + strings.Repeat("0", 126)},
		}},
		{vectorFile{"spec", "pccrd_4.2_v2_probe.xml"}, Probe{
			MessageID: "urn:uuid:91528b47-b96d-4e30-981f-308c0586926f",
			Version:   V2,
			// The spec's two "HoHoDks" are equal and not hashes (§9 row 22).
			SegmentIDs: [][]byte{spec2segRaw[3:35], spec2segRaw[35:67]},
			Tokens:     []string{spec2segText},
		}},
		{vectorFile{"derived", "pccrd_v1_probe_v1seg.xml"}, Probe{
			MessageID:  "urn:uuid:00000000-0000-4000-8000-000000000001",
			Version:    V1,
			SegmentIDs: [][]byte{v1ID},
			Tokens:     []string{strings.TrimSpace(string(readVector(t, "derived", "pccrd_v1_scope_v1seg.txt")))},
		}},
		{vectorFile{"ipxe", "ipxe_probe_v1.xml"}, Probe{
			MessageID:  "urn:uuid:3d1dc040-3b55-744c-86eb-802f7eade008",
			Version:    V1,
			SegmentIDs: [][]byte{vectors.Hex(t, "AEF1BD45BAB4CE605069C78A391E43F0D420AE720C474E0FAF1E067E723C0717")},
			Tokens:     []string{"AEF1BD45BAB4CE605069C78A391E43F0D420AE720C474E0FAF1E067E723C0717"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file.name, func(t *testing.T) {
			got, err := ParseProbe(readVector(t, tt.file.dir, tt.file.name))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(*got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", *got, tt.want)
			}
		})
	}
}

func TestProbeMatchVectors(t *testing.T) {
	examples := examplesDecoded(t)
	tests := []struct {
		file vectorFile
		want ProbeMatch
	}{
		{vectorFile{"spec", "pccrd_4.3_v1_probematch.xml"}, ProbeMatch{
			MessageID:       "urn:uuid:7f4b09a3-96c9-4170-9eb3-1c805a52f444",
			RelatesTo:       "urn:uuid:91528b47-b96d-4e30-981f-308c0586926f",
			InstanceID:      1218765447,
			MessageNumber:   4,
			EndpointAddress: "urn:uuid:87A89944-0230-43a5-AC4E-FAB1386C8E2C",
			Version:         V1,
			Tokens:          []string{"02" + strings.Repeat("0", 62), strings.Repeat("0", 64)},
			BlockCounts:     []uint32{0x2A}, // one count for two tokens, as printed
			XAddrs:          []string{"157.59.141.183:54321"},
			MetadataVersion: 1,
		}},
		{vectorFile{"spec", "pccrd_4.4_v2_probematch.xml"}, ProbeMatch{
			MessageID:       "urn:uuid:7f4b09a3-96c9-4170-9eb3-1c805a52f444",
			RelatesTo:       "urn:uuid:91528b47-b96d-4e30-981f-308c0586926f",
			InstanceID:      1218765447,
			MessageNumber:   4,
			EndpointAddress: "urn:uuid:87A89944-0230-43a5-AC4E-FAB1386C8E2C",
			Version:         V2,
			Availability:    repeat(FullyAvailable, 40), // "40 complete segments"
			SegmentAges:     examples["pccrd_v2_probematch_segmentages"],
			XAddrs:          []string{"157.59.141.183:54321"},
			MetadataVersion: 2,
		}},
		{vectorFile{"derived", "pccrd_v1_probematch_v1seg.xml"}, ProbeMatch{
			MessageID:       "urn:uuid:00000000-0000-4000-8000-000000000002",
			RelatesTo:       "urn:uuid:00000000-0000-4000-8000-000000000001",
			InstanceID:      1700000000,
			MessageNumber:   1,
			EndpointAddress: "urn:uuid:00000000-0000-4000-8000-0000000000aa",
			Version:         V1,
			Tokens:          []string{strings.TrimSpace(string(readVector(t, "derived", "pccrd_v1_scope_v1seg.txt")))},
			BlockCounts:     []uint32{2},
			XAddrs:          []string{"192.0.2.10:80"},
			MetadataVersion: 1,
		}},
	}
	if got := hex.EncodeToString(examples["pccrd_v2_probematch_segmentages"]); got != "000103020060ea000260ea00" {
		t.Fatalf("segment ages example = %s", got)
	}
	for _, tt := range tests {
		t.Run(tt.file.name, func(t *testing.T) {
			got, err := ParseProbeMatch(readVector(t, tt.file.dir, tt.file.name))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(*got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", *got, tt.want)
			}
		})
	}
}

func TestV1ScopeVector(t *testing.T) {
	v1ID, _ := iisSegmentIDs(t)
	text := strings.TrimSpace(string(readVector(t, "derived", "pccrd_v1_scope_v1seg.txt")))
	golden := vectors.Lookup(t, vectors.GoldenTable(t, "peerdist-vectors", "derived", "golden_messages.tsv"), "pccrd_v1_scope_v1seg")
	if !bytes.Equal(golden, v1ID) {
		t.Fatalf("golden pccrd_v1_scope_v1seg is not the IIS V1 segment ID")
	}
	got, err := encodeV1Token(v1ID)
	if err != nil || got != text {
		t.Errorf("encodeV1Token = %q, %v; want %q", got, err, text)
	}
	for _, token := range []string{text, strings.ToLower(text)} {
		id, err := decodeV1Token(token)
		if err != nil || !bytes.Equal(id, v1ID) {
			t.Errorf("decodeV1Token(%q) = %x, %v", token, id, err)
		}
	}
}

func TestV2ProbeScopeVectors(t *testing.T) {
	_, v2IDs := iisSegmentIDs(t)
	examples := examplesDecoded(t)
	bothBin := readVector(t, "derived", "pccrd_v2_probe_scope_both.bin")
	tests := []struct {
		file    vectorFile
		bin     []byte // the raw scope
		wantIDs [][]byte
	}{
		{vectorFile{"spec", "pccrd_v2_probe_scope_1seg.b64"}, readVector(t, "spec", "pccrd_v2_probe_scope_1seg.bin"),
			[][]byte{examples["pccrd_v2_probe_scope_1seg"][3:]}},
		{vectorFile{"spec", "pccrd_v2_probe_scope_2seg.b64"}, readVector(t, "spec", "pccrd_v2_probe_scope_2seg.bin"),
			[][]byte{examples["pccrd_v2_probe_scope_2seg"][3:35], examples["pccrd_v2_probe_scope_2seg"][35:]}},
		{vectorFile{"derived", "pccrd_v2_probe_scope_both.b64"}, bothBin, v2IDs},
	}
	for _, tt := range tests {
		t.Run(tt.file.name, func(t *testing.T) {
			text, raw := readB64(t, tt.file.dir, tt.file.name)
			if !bytes.Equal(raw, tt.bin) {
				t.Fatalf(".b64 and .bin differ")
			}
			ids, err := decodeV2Scope(text)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(ids, tt.wantIDs) {
				t.Errorf("IDs = %x, want %x", ids, tt.wantIDs)
			}
			if got, err := encodeV2Scope(ids); err != nil || got != text {
				t.Errorf("encodeV2Scope = %q, %v; want %q", got, err, text)
			}
		})
	}
}

func TestAvailabilityVectors(t *testing.T) {
	examples := examplesDecoded(t)
	tests := []struct {
		file vectorFile
		bin  []byte
		want []Availability
	}{
		// MS-PCCRD §4.4: "40 complete segments".
		{vectorFile{"spec", "pccrd_v2_probematch_scopes.b64"}, readVector(t, "spec", "pccrd_v2_probematch_scopes.bin"),
			repeat(FullyAvailable, 40)},
		// Two complete segments, first entry in the high bits (assumption).
		{vectorFile{"derived", "pccrd_v2_probematch_scopes_both_complete.b64"}, []byte{0xF0},
			[]Availability{FullyAvailable, FullyAvailable}},
	}
	if !bytes.Equal(examples["pccrd_v2_probematch_scopes"], bytes.Repeat([]byte{0xFF}, 10)) {
		t.Fatalf("decoded JSON disagrees with the README")
	}
	for _, tt := range tests {
		t.Run(tt.file.name, func(t *testing.T) {
			text, raw := readB64(t, tt.file.dir, tt.file.name)
			if !bytes.Equal(raw, tt.bin) {
				t.Fatalf("raw = %x, want %x", raw, tt.bin)
			}
			if got := UnpackAvailability(raw); !slices.Equal(got[:len(tt.want)], tt.want) || !allNone(got[len(tt.want):]) {
				t.Errorf("UnpackAvailability = %v, want %v then padding", got, tt.want)
			}
			packed, err := PackAvailability(tt.want)
			if err != nil || v2Base64().EncodeToString(packed) != text {
				t.Errorf("PackAvailability = %x, %v; want %s", packed, err, text)
			}
		})
	}
}

func allNone(a []Availability) bool {
	for _, x := range a {
		if x != NotAvailable {
			return false
		}
	}
	return true
}

func TestSegmentAgesVector(t *testing.T) {
	text, raw := readB64(t, "spec", "pccrd_v2_probematch_segmentages.b64")
	if bin := readVector(t, "spec", "pccrd_v2_probematch_segmentages.bin"); !bytes.Equal(raw, bin) {
		t.Fatalf(".b64 and .bin differ")
	}
	if want := examplesDecoded(t)["pccrd_v2_probematch_segmentages"]; !bytes.Equal(raw, want) {
		t.Fatalf("raw = %x, want %x", raw, want)
	}
	m, err := ParseProbeMatch(readVector(t, "spec", "pccrd_4.4_v2_probematch.xml"))
	if err != nil {
		t.Fatal(err)
	}
	if v2Base64().EncodeToString(m.SegmentAges) != text {
		t.Errorf("SegmentAges = %x, want %s", m.SegmentAges, text)
	}
}

// TestEveryPCCRDVectorIsCovered fails when a pccrd_* file is added to the
// shared set without a test here reading it.
func TestEveryPCCRDVectorIsCovered(t *testing.T) {
	covered := map[string]bool{
		"spec/pccrd_examples_decoded.json":                     true,
		"spec/pccrd_v2_probe_scope_1seg.b64":                   true,
		"spec/pccrd_v2_probe_scope_1seg.bin":                   true,
		"spec/pccrd_v2_probe_scope_2seg.b64":                   true,
		"spec/pccrd_v2_probe_scope_2seg.bin":                   true,
		"spec/pccrd_v2_probematch_scopes.b64":                  true,
		"spec/pccrd_v2_probematch_scopes.bin":                  true,
		"spec/pccrd_v2_probematch_segmentages.b64":             true,
		"spec/pccrd_v2_probematch_segmentages.bin":             true,
		"derived/pccrd_v1_scope_v1seg.txt":                     true,
		"derived/pccrd_v2_probe_scope_both.b64":                true,
		"derived/pccrd_v2_probe_scope_both.bin":                true,
		"derived/pccrd_v2_probematch_scopes_both_complete.b64": true,
	}
	for _, f := range xmlVectors() {
		covered[f.dir+"/"+f.name] = true
	}
	for _, dir := range []string{"spec", "derived"} {
		entries, err := os.ReadDir(vectors.Path(t, "peerdist-vectors", dir))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), "pccrd_") && !covered[dir+"/"+e.Name()] {
				t.Errorf("%s/%s is not covered by a test", dir, e.Name())
			}
		}
	}
}
