package pccrd

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// Tests for the rows of docs/protocols.md §9 this package owns.

// mutate replaces old (which must occur) with new in a vector.
func mutate(tb testing.TB, data []byte, old, new string) []byte {
	tb.Helper()
	if !bytes.Contains(data, []byte(old)) {
		tb.Fatalf("mutate: %q not in the input", old)
	}
	return bytes.ReplaceAll(data, []byte(old), []byte(new))
}

// Row 19: BlockCount is 8 hex digits per token; the spec's 4-digit example
// is wrong, and its §4.3 reply has one count for two tokens.
func TestSpecErrata19_BlockCountIs8HexDigits(t *testing.T) {
	derived := readVector(t, "derived", "pccrd_v1_probematch_v1seg.xml")
	m, err := ParseProbeMatch(derived)
	if err != nil {
		t.Fatal(err)
	}
	m.Tokens = append(m.Tokens, strings.Repeat("ab", 32), strings.Repeat("CD", 48))
	m.BlockCounts = []uint32{0x2A, 0, 0x12345678}
	data, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(data, []byte("<PeerDist:BlockCount>0000002A0000000012345678</PeerDist:BlockCount>")) {
		t.Errorf("encoded BlockCount is not 8 upper-case digits per token:\n%s", data)
	}

	for _, tt := range []struct {
		text string
		want []uint32
	}{
		{"0000002A", []uint32{42}},
		{"0000002a00000001", []uint32{42, 1}},
		{" 0000002A\n00000001 ", []uint32{42, 1}}, // white space between groups: tolerated
		{"FFFFFFFF", []uint32{0xFFFFFFFF}},
	} {
		got, err := ParseProbeMatch(mutate(t, derived, ">00000002<", ">"+tt.text+"<"))
		if err != nil || !reflect.DeepEqual(got.BlockCounts, tt.want) {
			t.Errorf("BlockCount %q = %v, %v; want %v", tt.text, got, err, tt.want)
		}
	}
	for _, bad := range []string{"001900040010", "2A", "0000 002A", "0000002G", "", "+0000002"} {
		if _, err := ParseProbeMatch(mutate(t, derived, ">00000002<", ">"+bad+"<")); !errors.Is(err, ErrMalformed) {
			t.Errorf("BlockCount %q: err = %v, want ErrMalformed", bad, err)
		}
	}

	// The spec's §4.3 reply decodes as printed; Marshal will not send it.
	spec, err := ParseProbeMatch(readVector(t, "spec", "pccrd_4.3_v1_probematch.xml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(spec.Tokens) != 2 || !reflect.DeepEqual(spec.BlockCounts, []uint32{0x2A}) {
		t.Fatalf("spec §4.3: tokens %q counts %v", spec.Tokens, spec.BlockCounts)
	}
	if _, err := spec.Marshal(); err == nil {
		t.Errorf("Marshal sent one block count for two tokens")
	}
}

// Row 20: V1 hex case is unspecified: accept either, emit upper case, echo
// tokens verbatim.
func TestSpecErrata20_HexCaseInsensitiveInUpperCaseOut(t *testing.T) {
	const upper = "AEF1BD45BAB4CE605069C78A391E43F0D420AE720C474E0FAF1E067E723C0717"
	ipxe := readVector(t, "ipxe", "ipxe_probe_v1.xml")
	want, err := ParseProbe(ipxe)
	if err != nil {
		t.Fatal(err)
	}
	for _, token := range []string{strings.ToLower(upper), "aef1BD45bab4CE605069C78A391E43F0D420AE720C474E0FAF1E067E723C0717"} {
		got, err := ParseProbe(mutate(t, ipxe, upper, token))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got.SegmentIDs, want.SegmentIDs) {
			t.Errorf("%s decodes to other IDs", token)
		}
		if got.Tokens[0] != token {
			t.Errorf("token %q not kept verbatim: %q", token, got.Tokens[0])
		}
		// A re-sent probe keeps the spelling; a fresh one is upper case.
		if data, err := got.Marshal(); err != nil || !bytes.Contains(data, []byte(">"+token+"<")) {
			t.Errorf("Marshal lost the token's spelling: %v", err)
		}
		fresh := &Probe{MessageID: got.MessageID, Version: V1, SegmentIDs: got.SegmentIDs}
		if data, err := fresh.Marshal(); err != nil || !bytes.Contains(data, []byte(">"+upper+"<")) {
			t.Errorf("Marshal did not write upper-case hex: %v", err)
		}
	}
}

// Row 21: the V2 reply extension is PeerDistDataV2 in the 2012 text and
// PeerDistData in v20240423. Accept both; send PeerDistData.
func TestSpecErrata21_V2WrapperEitherName(t *testing.T) {
	spec := readVector(t, "spec", "pccrd_4.4_v2_probematch.xml")
	want, err := ParseProbeMatch(spec)
	if err != nil {
		t.Fatal(err)
	}
	v2Wrapper := mutate(t, spec, "PeerDist:PeerDistData>", "PeerDist:PeerDistDataV2>")
	got, err := ParseProbeMatch(v2Wrapper)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("PeerDistDataV2 wrapper decodes differently: %+v", got)
	}
	data, err := got.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(data, []byte("<PeerDist:PeerDistData><PeerDist:SegmentAges>")) {
		t.Errorf("Marshal does not use the v20240423 wrapper:\n%s", data)
	}
	// An unknown wrapper hides SegmentAges: the reply has none.
	other, err := ParseProbeMatch(mutate(t, spec, "PeerDist:PeerDistData>", "PeerDist:Other>"))
	if err != nil || other.SegmentAges != nil {
		t.Errorf("unknown wrapper: SegmentAges %x, %v", other.SegmentAges, err)
	}
}

// Row 22: the spec's V2 example IDs are not hashes (both equal, pointer and
// UTF-16 text); only the framing is checked.
func TestSpecErrata22_SpecSegmentIDsAreFramingOnly(t *testing.T) {
	p, err := ParseProbe(readVector(t, "spec", "pccrd_4.2_v2_probe.xml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.SegmentIDs) != 2 || len(p.SegmentIDs[0]) != 32 || !bytes.Equal(p.SegmentIDs[0], p.SegmentIDs[1]) {
		t.Fatalf("framing: %d IDs %x", len(p.SegmentIDs), p.SegmentIDs)
	}
	if !bytes.Contains(p.SegmentIDs[0], []byte("A\x00A\x00D\x00y\x00g\x00M\x00M\x001\x00")) {
		t.Errorf("the example no longer holds the UTF-16 text that shows it is made up")
	}
}
