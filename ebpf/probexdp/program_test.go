package probexdp

import (
	"errors"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
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

// A trunk port is left alone when its VLAN interfaces are served: only
// they attribute a tagged probe to the right subnet.
func TestLeaveTrunks(t *testing.T) {
	links := map[int][2]any{ // index -> kind, parent
		2: {"device", 0}, 3: {"vlan", 2}, 4: {"vlan", 2}, 5: {"device", 0}, 6: {"vlan", 9},
	}
	link := func(idx int) (string, int) { l := links[idx]; return l[0].(string), l[1].(int) }
	for _, tt := range []struct {
		name   string
		ifaces map[string]int
		want   []string // attached
		trunks []string
	}{
		{"a trunk with two VLANs", map[string]int{"eth0": 2, "eth0.10": 3, "eth0.20": 4}, []string{"eth0.10", "eth0.20"}, []string{"eth0"}},
		{"a VLAN whose parent is not served", map[string]int{"eth0.10": 3, "eth1": 5}, []string{"eth0.10", "eth1"}, nil},
		{"plain interfaces", map[string]int{"eth0": 2, "eth1": 5}, []string{"eth0", "eth1"}, nil},
		{"a VLAN of an interface not listed", map[string]int{"eth0": 2, "vlan6": 6}, []string{"eth0", "vlan6"}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			trunks := leaveTrunks(tt.ifaces, link)
			got := slices.Sorted(maps.Keys(tt.ifaces))
			gotTrunks := slices.Sorted(maps.Keys(trunks))
			if !slices.Equal(got, tt.want) || !slices.Equal(gotTrunks, tt.trunks) {
				t.Fatalf("attached %v, trunks %v; want %v, %v", got, gotTrunks, tt.want, tt.trunks)
			}
			for _, why := range trunks {
				if !strings.Contains(why, "eth0.10, eth0.20") {
					t.Errorf("reason %q does not name the VLAN interfaces in order", why)
				}
			}
		})
	}
}
