package pccrd

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/outpost-appliance/outpost/peerdist/allocs"
)

// Adversarial datagrams near the UDP limit must cost memory in proportion
// to their size, whatever they claim, and fail the right way.
func TestDecodersAllocateBounded(t *testing.T) {
	const size = 60000
	v1 := string(readVector(t, "derived", "pccrd_v1_probe_v1seg.xml"))
	v2 := string(readVector(t, "spec", "pccrd_4.2_v2_probe.xml"))
	match := string(readVector(t, "derived", "pccrd_v1_probematch_v1seg.xml"))
	const v1Token = "491B217DBEE2B5F12CA79B015E06F4BBE64F9745BAD7867AEF17DE59927EDCE9"
	v2Token := strings.TrimSpace(string(readVector(t, "spec", "pccrd_v2_probe_scope_2seg.b64")))
	fill := func(unit string) string { return strings.Repeat(unit, size/len(unit)) }
	inProbe := func(s string) string { return strings.Replace(v1, "<wsd:Probe>", s+"<wsd:Probe>", 1) }

	match4_4 := string(readVector(t, "spec", "pccrd_4.4_v2_probematch.xml"))
	tests := []struct {
		name    string
		data    string
		parse   func([]byte) error
		wantErr error // nil: must decode
	}{
		{"V2 scope claiming 255 IDs", strings.Replace(v2, v2Token,
			base64.StdEncoding.EncodeToString(append([]byte{0, 32, 255}, make([]byte, 96)...)), 1), parseProbeErr, ErrMalformed},
		{"nested elements", inProbe(fill("<a>")), parseProbeErr, ErrMalformed},
		{"sibling elements", inProbe(fill("<a/>")), parseProbeErr, ErrMalformed},
		{"many attributes", inProbe("<a " + fill(`b="" `)[:size-20] + "/>"), parseProbeErr, ErrMalformed},
		{"attributes up to the limit", inProbe("<a " + strings.Repeat(`b="`+strings.Repeat("x", 200)+`" `, maxEqualsSigns-10) + "/>"), parseProbeErr, nil},
		{"many namespace declarations", inProbe("<a " + fill(`xmlns:b="c" `)[:size-24] + "/>"), parseProbeErr, ErrMalformed},
		{"long text", inProbe("<a>" + fill("x") + "</a>"), parseProbeErr, nil},
		{"long comment", inProbe("<!--" + fill("x") + "-->"), parseProbeErr, nil},
		{"many character references", inProbe("<a>" + fill("&#x41;") + "</a>"), parseProbeErr, nil},
		{"many V1 tokens", strings.Replace(v1, v1Token, fill(v1Token+" "), 1), parseProbeErr, nil},
		{"many block counts", strings.Replace(match, ">00000002<", ">"+fill("00000002")+"<", 1), parseProbeMatchErr, nil},
		{"many XAddrs", strings.Replace(match, "192.0.2.10:80", fill("192.0.2.10:80 "), 1), parseProbeMatchErr, nil},
		{"huge V2 availability", strings.Replace(match4_4,
			"/////////////w==", fill("////"), 1), parseProbeMatchErr, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if len(tt.data) > MaxDatagramSize {
				t.Fatalf("test datagram of %d bytes is over the limit", len(tt.data))
			}
			if err := tt.parse([]byte(tt.data)); !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			t.Log(allocRatio([]byte(tt.data), tt.parse))
			allocs.Bounded(t, tt.name, []byte(tt.data), 12, 16<<10, func(b []byte) { _ = tt.parse(b) })
		})
	}
}

// allocRatio is a debugging aid: how many bytes per input byte a parse
// allocates.
func allocRatio(data []byte, parse func([]byte) error) string {
	n := allocs.Bytes(func() { _ = parse(data) })
	return fmt.Sprintf("%d bytes for %d (%.1f×)", n, len(data), float64(n)/float64(len(data)))
}
