package api

import (
	"bytes"
	"strings"
	"testing"
)

// outpost status shows what the discovery fast path did per interface,
// or why it does not run.
func TestWriteXDP(t *testing.T) {
	ifaces := []Interface{
		{Name: "eth0", XDP: "native", XDPCounters: map[string]uint64{"captured": 12, "captured-held": 10, "drop-not-held": 880, "drop-rate-limit": 20, "pass-v2": 3, "pass-uncertain": 1}},
		{Name: "eth1", XDP: "off", XDPError: "probexdp: attach to eth1: native: operation not supported"},
		{Name: "lo"},
	}
	var b bytes.Buffer
	if err := writeXDP(&b, ifaces); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"discovery fast path (XDP):",
		"eth0: native: 12 probes captured (10 for held segments), dropped 880 not held and 20 over the rate, 4 passed to the socket path",
		"eth1: off: probexdp: attach to eth1: native: operation not supported"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("lacks %q:\n%s", want, b.String())
		}
	}
	if strings.Contains(b.String(), "lo:") {
		t.Errorf("an interface without discovery is listed:\n%s", b.String())
	}
	b.Reset()
	if writeXDP(&b, []Interface{{Name: "lo"}}); b.Len() != 0 {
		t.Errorf("printed %q without any XDP interface", b.String())
	}
}
