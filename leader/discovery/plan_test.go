package discovery

import (
	"bytes"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/outpost-appliance/outpost/peerdist/pccrd"
	"github.com/outpost-appliance/outpost/peerdist/pccrr"
)

func TestMakePlan(t *testing.T) {
	now := time.Unix(1_780_000_000, 0)
	a, b, c := bytes.Repeat([]byte{0xAA}, 32), bytes.Repeat([]byte{0xBB}, 32), bytes.Repeat([]byte{0xCC}, 32)
	local := Holding{Where: Local, Blocks: 42, Since: now.Add(-10 * time.Minute)}
	full := Holding{Where: Local, Blocks: 1, Complete: true, Since: now.Add(-600 * time.Second)}
	relayed := Holding{Where: Relayed}
	lower := string(bytes.Repeat([]byte("aa"), 32)) // a client's lower-case token
	upperC := string(bytes.Repeat([]byte("CC"), 32))
	tests := []struct {
		name        string
		probe       *pccrd.Probe
		held        []Holding
		wantTokens  []string
		wantCounts  []uint32
		wantAvail   []pccrd.Availability
		wantAges    []pccrr.SegmentAge
		wantRelayed bool
		wantMissing int
		wantNil     bool
	}{
		{name: "V1 held: token echoed as received, count of held blocks",
			probe: &pccrd.Probe{MessageID: "m", Version: pccrd.V1, SegmentIDs: [][]byte{a}, Tokens: []string{lower}},
			held:  []Holding{local}, wantTokens: []string{lower}, wantCounts: []uint32{42}},
		{name: "V1 nothing held: silence, segment missing",
			probe: &pccrd.Probe{MessageID: "m", Version: pccrd.V1, SegmentIDs: [][]byte{a}},
			held:  []Holding{{}}, wantNil: true, wantMissing: 1},
		{name: "V1 relayed with unknown count answers 1 (iPXE ignores 0)",
			probe: &pccrd.Probe{MessageID: "m", Version: pccrd.V1, SegmentIDs: [][]byte{b}},
			held:  []Holding{relayed}, wantTokens: []string{string(bytes.Repeat([]byte("BB"), 32))},
			wantCounts: []uint32{1}, wantRelayed: true},
		{name: "V1 two segments, one held",
			probe: &pccrd.Probe{MessageID: "m", Version: pccrd.V1, SegmentIDs: [][]byte{a, c}, Tokens: []string{"aa-token", upperC}},
			held:  []Holding{{}, local}, wantTokens: []string{upperC}, wantCounts: []uint32{42}, wantMissing: 1},
		{name: "V2 bit array in probe order, ages of held entries",
			probe:     &pccrd.Probe{MessageID: "m", Version: pccrd.V2, SegmentIDs: [][]byte{a, b, c}},
			held:      []Holding{full, {}, local},
			wantAvail: []pccrd.Availability{pccrd.FullyAvailable, pccrd.NotAvailable, pccrd.PartiallyAvailable},
			wantAges:  []pccrr.SegmentAge{{Index: 0, Age: 60000}, {Index: 2, Age: 60000}}, wantMissing: 1},
		{name: "V2 nothing held",
			probe: &pccrd.Probe{MessageID: "m", Version: pccrd.V2, SegmentIDs: [][]byte{a, b}},
			held:  []Holding{{}, {}}, wantNil: true, wantMissing: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := MakePlan(tt.probe, tt.held, now)
			if len(p.Missing) != tt.wantMissing || p.Relayed != tt.wantRelayed {
				t.Errorf("missing %d relayed %v", len(p.Missing), p.Relayed)
			}
			if tt.wantNil {
				if p.Match != nil {
					t.Fatalf("answered: %+v", p.Match)
				}
				return
			}
			m := p.Match
			if m == nil || m.RelatesTo != "m" || m.Version != tt.probe.Version {
				t.Fatalf("match %+v", m)
			}
			if !reflect.DeepEqual(m.Tokens, tt.wantTokens) || !reflect.DeepEqual(m.BlockCounts, tt.wantCounts) ||
				!reflect.DeepEqual(m.Availability, tt.wantAvail) {
				t.Errorf("tokens %q counts %v avail %v", m.Tokens, m.BlockCounts, m.Availability)
			}
			if tt.wantAges != nil {
				ages, err := pccrr.ParseSegmentAges(m.SegmentAges)
				if err != nil || !reflect.DeepEqual(ages.Ages, tt.wantAges) || ages.Units != pccrr.AgeCentiseconds {
					t.Errorf("ages %+v %v", ages, err)
				}
			}
			// What the plan makes must encode (iPXE's literal checks are
			// pccrd's business; an unencodable plan would be silence).
			m.MessageID, m.EndpointAddress, m.XAddrs = pccrd.NewMessageID(), pccrd.NewMessageID(), []string{"10.0.0.1:1337"}
			m.InstanceID, m.MessageNumber = 1, 1
			if _, err := m.Marshal(); err != nil {
				t.Errorf("marshal: %v", err)
			}
		})
	}
}

func TestPickSource(t *testing.T) {
	prefixes := []netip.Prefix{
		netip.MustParsePrefix("10.1.0.5/24"), netip.MustParsePrefix("10.9.0.5/24"),
		netip.MustParsePrefix("fe80::5/64"), netip.MustParsePrefix("fd00:1::5/64"),
	}
	tests := []struct{ peer, want string }{
		{"10.9.0.77", "10.9.0.5"},
		{"10.1.0.77", "10.1.0.5"},
		{"10.200.0.1", "10.1.0.5"}, // no subnet of ours: first IPv4
		{"fd00:1::77", "fd00:1::5"},
		{"fe80::77", "fd00:1::5"}, // link-local client: our routable IPv6
		{"::ffff:10.9.0.77", "10.9.0.5"},
	}
	for _, tt := range tests {
		got, err := pickSource(prefixes, netip.MustParseAddr(tt.peer))
		if err != nil || got.String() != tt.want {
			t.Errorf("%s: got %v %v, want %s", tt.peer, got, err, tt.want)
		}
	}
	if _, err := pickSource(prefixes[:2], netip.MustParseAddr("fd00:2::1")); err == nil {
		t.Error("IPv6 client answered without an IPv6 address")
	}
}
