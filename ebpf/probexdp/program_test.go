package probexdp

import (
	"errors"
	"regexp"
	"strconv"
	"testing"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
)

// The verifier's work stays far below its limit of a million instructions,
// so that older kernels (Debian's 6.1 is the oldest target), which prune
// less, accept the program too.
func TestVerifierBudget(t *testing.T) {
	requireBPF(t)
	spec, err := loadXdp()
	if err != nil {
		t.Fatal(err)
	}
	var objs xdpObjects
	if err := spec.LoadAndAssign(&objs, &ebpf.CollectionOptions{Programs: ebpf.ProgramOptions{LogLevel: ebpf.LogLevelStats}}); err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			t.Fatalf("%-60v", ve)
		}
		t.Fatal(err)
	}
	defer objs.Close()
	m := regexp.MustCompile(`processed (\d+) insns`).FindStringSubmatch(objs.OutpostProbe.VerifierLog)
	if m == nil {
		t.Fatalf("no statistics in the verifier log:\n%s", objs.OutpostProbe.VerifierLog)
	}
	n, _ := strconv.Atoi(m[1])
	t.Logf("verifier: %d instructions processed", n)
	if n > 200_000 {
		t.Errorf("the verifier processed %d instructions: keep it under 200000 (a fifth of its limit)", n)
	}
}

func TestRateConfig(t *testing.T) {
	tests := []struct {
		rate, burst int
		want        xdpConfig
	}{
		{0, 0, xdpConfig{}},
		{100, 0, xdpConfig{RateIntervalNs: 10_000_000, BurstNs: 199 * 10_000_000}},
		{100, 1, xdpConfig{RateIntervalNs: 10_000_000, BurstNs: 0}},
		{3, 5, xdpConfig{RateIntervalNs: uint64(time.Second) / 3, BurstNs: 4 * (uint64(time.Second) / 3)}},
	}
	for _, tt := range tests {
		if got := rateConfig(tt.rate, tt.burst); got != tt.want {
			t.Errorf("rateConfig(%d, %d) = %+v, want %+v", tt.rate, tt.burst, got, tt.want)
		}
	}
}

func TestParseMode(t *testing.T) {
	for in, want := range map[string]Mode{"": Off, "off": Off, "auto": Auto, "native": Native, "generic": Generic} {
		if got, err := ParseMode(in); err != nil || got != want {
			t.Errorf("ParseMode(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := ParseMode("turbo"); err == nil {
		t.Error("ParseMode accepted turbo")
	}
}

// Records that cannot come from the program are refused, not decoded.
func TestDecodeEventRefusesBadRecords(t *testing.T) {
	var e xdpEvent
	size := int(unsafe.Sizeof(e))
	good := make([]byte, size)
	good[22], good[26] = 1, 1 // count, msgid_len
	if _, err := decodeEvent(good, nil); err != nil {
		t.Fatalf("a minimal record: %v", err)
	}
	for name, raw := range map[string][]byte{
		"short":         good[:size-1],
		"no IDs":        func() []byte { b := append([]byte(nil), good...); b[22] = 0; return b }(),
		"nine IDs":      func() []byte { b := append([]byte(nil), good...); b[22] = 9; return b }(),
		"no message ID": func() []byte { b := append([]byte(nil), good...); b[26] = 0; return b }(),
	} {
		if _, err := decodeEvent(raw, nil); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
}
