package probexdp

import (
	"bytes"
	"encoding/hex"
	"reflect"
	"strings"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/outpost-appliance/outpost/peerdist/pccrd"
	"github.com/outpost-appliance/outpost/peerdist/vectors"
)

// The segment the real iPXE probe asks for, and its message ID.
const (
	ipxeToken = "AEF1BD45BAB4CE605069C78A391E43F0D420AE720C474E0FAF1E067E723C0717"
	ipxeMsgID = "urn:uuid:3d1dc040-3b55-744c-86eb-802f7eade008"
)

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// ipxeProbe is the exact 814-byte datagram iPXE sends.
func ipxeProbe(t testing.TB) []byte {
	t.Helper()
	b := vectors.Read(t, "peerdist-vectors", "ipxe", "ipxe_probe_v1.xml")
	if len(b) != 814 {
		t.Fatalf("iPXE probe vector is %d bytes, want 814", len(b))
	}
	return b
}

// edit returns the iPXE probe with replacements (old, new pairs).
func edit(t testing.TB, pairs ...string) []byte {
	t.Helper()
	s := string(ipxeProbe(t))
	for i := 0; i+1 < len(pairs); i += 2 {
		if !strings.Contains(s, pairs[i]) {
			t.Fatalf("edit: %q not in the probe", pairs[i])
		}
		s = strings.Replace(s, pairs[i], pairs[i+1], 1)
	}
	return []byte(s)
}

// scopes replaces the iPXE probe's scope text.
func scopes(t testing.TB, text string) []byte { return edit(t, ipxeToken, text) }

// token returns a 64-digit token of byte b.
func token(b byte) string { return strings.ToUpper(hex.EncodeToString(bytes.Repeat([]byte{b}, 32))) }

// marshalled is a probe as Outpost's prober (pccrd.Marshal) sends it.
func marshalled(t testing.TB, version pccrd.Version, ids ...[]byte) []byte {
	t.Helper()
	b, err := (&pccrd.Probe{MessageID: "urn:uuid:00000000-0000-4000-8000-000000000001", Version: version, SegmentIDs: ids}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Each fixture asserts the verdict, the event and the counters.
func TestFixtures(t *testing.T) {
	id := mustHex(ipxeToken)
	other := bytes.Repeat([]byte{0x11}, 32)
	printer := `<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope" xmlns:wsa="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:wsd="http://schemas.xmlsoap.org/ws/2005/04/discovery" xmlns:wsdp="http://schemas.xmlsoap.org/ws/2006/02/devprof"><soap:Header><wsa:To>urn:schemas-xmlsoap-org:ws:2005:04:discovery</wsa:To><wsa:Action>http://schemas.xmlsoap.org/ws/2005/04/discovery/Probe</wsa:Action><wsa:MessageID>urn:uuid:0b6bd5c4-1f0e-4a0b-9b7e-5c0d3e0c1a11</wsa:MessageID></soap:Header><soap:Body><wsd:Probe><wsd:Types>wsdp:Device</wsd:Types></wsd:Probe></soap:Body></soap:Envelope>`
	hello := strings.Replace(printer, "discovery/Probe<", "discovery/Hello<", 1)
	nine := strings.TrimSpace(strings.Repeat(token(0x22)+" ", 9))
	eight := strings.TrimSpace(strings.Repeat(token(0x22)+" ", 7)) + " " + ipxeToken

	type want struct {
		verdict  uint32
		ids      [][]byte // event expected with these IDs
		upper    []bool
		held     uint8
		peer     uint8
		counters Counters
	}
	captured := func(ids [][]byte, upper []bool, held uint8) want {
		c := Counters{Discovery: 1, Captured: 1}
		if held != 0 {
			c.CapturedHeld = 1
		}
		return want{verdict: xdpDrop, ids: ids, upper: upper, held: held, counters: c}
	}
	pass := func(c Counters) want {
		if c.Other == 0 && c.Fragments == 0 {
			c.Discovery = 1
		}
		return want{verdict: xdpPass, counters: c}
	}
	held1 := captured([][]byte{id}, []bool{true}, 1)

	tests := []struct {
		name     string
		frame    frame
		forward  bool
		unsynced bool
		peer     bool // id is in the peer map, not held
		notHeld  bool // id is not held at all
		want     want
	}{
		{name: "iPXE probe over IPv4, held", frame: frame{src: client4, payload: ipxeProbe(t)}, want: held1},
		{name: "iPXE probe over IPv6, held", frame: frame{src: client6, payload: ipxeProbe(t)}, want: held1},
		// A tagged probe is left to its VLAN interface's own program
		// (see pass_counted in probe.c); other tagged traffic is other.
		{name: "iPXE probe with a VLAN tag, held: passed to the VLAN device", frame: frame{src: client4, vlan: 20, payload: ipxeProbe(t)},
			want: want{verdict: xdpPass, counters: Counters{PassVLAN: 1}}},
		{name: "iPXE probe over IPv6 with a VLAN tag", frame: frame{src: client6, vlan: 4094, payload: ipxeProbe(t)},
			want: want{verdict: xdpPass, counters: Counters{PassVLAN: 1}}},
		{name: "tagged non-3702 traffic", frame: frame{src: client4, vlan: 20, dport: 53, payload: []byte("dns")},
			want: want{verdict: xdpPass, counters: Counters{Other: 1}}},
		{name: "IPv4 without a UDP checksum", frame: frame{src: client4, noSum: true, payload: ipxeProbe(t)}, want: held1},
		{name: "not held, forwarding off: dropped", frame: frame{src: client4, payload: ipxeProbe(t)}, notHeld: true,
			want: want{verdict: xdpDrop, counters: Counters{Discovery: 1, DropNotHeld: 1}}},
		{name: "not held, forwarding on: captured for the forwarder", frame: frame{src: client4, payload: ipxeProbe(t)}, notHeld: true, forward: true,
			want: captured([][]byte{id}, []bool{true}, 0)},
		{name: "not held, forwarding on, a leader's re-multicast: dropped",
			frame:   frame{src: netip4("10.61.0.9:3703"), payload: ipxeProbe(t)},
			notHeld: true, forward: true, want: want{verdict: xdpDrop, counters: Counters{Discovery: 1, DropNotHeld: 1}}},
		{name: "held by a peer leader", frame: frame{src: client4, payload: ipxeProbe(t)}, peer: true,
			want: want{verdict: xdpDrop, ids: [][]byte{id}, upper: []bool{true}, peer: 1, counters: Counters{Discovery: 1, Captured: 1, CapturedPeer: 1}}},
		{name: "maps not in sync yet: captured", frame: frame{src: client4, payload: ipxeProbe(t)}, notHeld: true, unsynced: true,
			want: captured([][]byte{id}, []bool{true}, 0)},
		{name: "lower-case ID", frame: frame{src: client4, payload: scopes(t, strings.ToLower(ipxeToken))},
			want: captured([][]byte{id}, []bool{false}, 1)},
		{name: "mixed-case ID: uncertain", frame: frame{src: client4, payload: scopes(t, "a"+ipxeToken[1:])},
			want: pass(Counters{PassUncertain: 1})},
		{name: "several scopes, one held, white space around",
			frame: frame{src: client6, payload: scopes(t, "\n "+token(0x11)+"\t"+strings.ToLower(ipxeToken)+"\r\n  "+token(0x33)+" ")},
			want:  captured([][]byte{other, id, bytes.Repeat([]byte{0x33}, 32)}, []bool{false, false, false}, 2)}, // digits only: either case
		{name: "eight scopes", frame: frame{src: client4, payload: scopes(t, eight)},
			want: captured([][]byte{f22(), f22(), f22(), f22(), f22(), f22(), f22(), id}, []bool{false, false, false, false, false, false, false, true}, 0x80)},
		{name: "nine scopes: uncertain", frame: frame{src: client4, payload: scopes(t, nine)}, want: pass(Counters{PassUncertain: 1})},
		{name: "empty scopes: uncertain", frame: frame{src: client4, payload: scopes(t, "")}, want: pass(Counters{PassUncertain: 1})},
		{name: "SHA-512 ID (128 digits): uncertain", frame: frame{src: client4, payload: scopes(t, ipxeToken+ipxeToken)}, want: pass(Counters{PassUncertain: 1})},
		{name: "not hex: uncertain", frame: frame{src: client4, payload: scopes(t, "G"+ipxeToken[1:])}, want: pass(Counters{PassUncertain: 1})},
		{name: "Outpost's own prober layout", frame: frame{src: client4, payload: marshalled(t, pccrd.V1, id)}, want: held1},
		{name: "MS-PCCRD 4.1 layout", frame: frame{src: client4, payload: vectors.Read(t, "peerdist-vectors", "derived", "pccrd_v1_probe_v1seg.xml")},
			want: want{verdict: xdpDrop, counters: Counters{Discovery: 1, DropNotHeld: 1}}},
		{name: "V2 probe", frame: frame{src: client4, payload: marshalled(t, pccrd.V2, id)}, want: pass(Counters{PassV2: 1})},
		{name: "V2 probe of the spec", frame: frame{src: client4, payload: vectors.Read(t, "peerdist-vectors", "spec", "pccrd_4.2_v2_probe.xml")}, want: pass(Counters{PassV2: 1})},
		{name: "printer probe (not PeerDist)", frame: frame{src: client4, payload: []byte(printer)}, want: pass(Counters{PassOtherWSD: 1})},
		{name: "Hello", frame: frame{src: client6, payload: []byte(hello)}, want: pass(Counters{PassOtherWSD: 1})},
		{name: "other prefix", frame: frame{src: client4, payload: edit(t, "PeerDist:PeerDistData", "pd:PeerDistData", `xmlns:PeerDist=`, `xmlns:pd=`)},
			want: pass(Counters{PassOtherWSD: 1})},
		{name: "escaped MessageID", frame: frame{src: client4, payload: edit(t, ipxeMsgID, "urn:uuid:a&amp;b")}, want: pass(Counters{PassOtherWSD: 1})},
		{name: "MessageID of 65 characters", frame: frame{src: client4, payload: edit(t, ipxeMsgID, strings.Repeat("x", 65))}, want: pass(Counters{PassOtherWSD: 1})},
		{name: "MessageID of 64 characters", frame: frame{src: client4, payload: edit(t, ipxeMsgID, strings.Repeat("x", 64))}, want: held1},
		{name: "trailing white space", frame: frame{src: client4, payload: append(ipxeProbe(t), "\r\n\t "...)}, want: held1},
		{name: "trailing comment: uncertain", frame: frame{src: client4, payload: append(ipxeProbe(t), "<!---->"...)}, want: pass(Counters{PassUncertain: 1})},
		{name: "15 bytes of white space between elements", frame: frame{src: client4, payload: edit(t, "<soap:Body>", "\r\n"+strings.Repeat(" ", 13)+"<soap:Body>")}, want: held1},
		{name: "16 bytes of white space between elements", frame: frame{src: client4, payload: edit(t, "<soap:Body>", strings.Repeat(" ", 16)+"<soap:Body>")}, want: pass(Counters{PassOtherWSD: 1})},
		{name: "bad UDP checksum", frame: frame{src: client4, badSum: true, payload: ipxeProbe(t)}, want: pass(Counters{PassChecksum: 1})},
		{name: "bad UDP checksum, not held: dropped as the stack would", frame: frame{src: client4, badSum: true, payload: ipxeProbe(t)}, notHeld: true,
			want: want{verdict: xdpDrop, counters: Counters{Discovery: 1, DropNotHeld: 1}}},
		{name: "IPv6 without a checksum", frame: frame{src: client6, noSum: true, payload: ipxeProbe(t)}, want: pass(Counters{PassChecksum: 1})},
		{name: "truncated frame", frame: frame{src: client4, trim: 100, payload: ipxeProbe(t)}, want: pass(Counters{PassHeader: 1})},
		{name: "UDP length shorter than the datagram", frame: frame{src: client4, udpLenPlus: -10, payload: ipxeProbe(t)}, want: pass(Counters{PassHeader: 1})},
		{name: "bytes after the datagram", frame: frame{src: client4, pad: 4, payload: ipxeProbe(t)}, want: pass(Counters{PassHeader: 1})},
		{name: "oversized", frame: frame{src: client4, payload: append(ipxeProbe(t), bytes.Repeat([]byte(" "), 1300)...)}, want: pass(Counters{PassOversize: 1})},
		{name: "short datagram", frame: frame{src: client4, payload: []byte("hello")}, want: pass(Counters{PassOtherWSD: 1})},
		{name: "unicast to this host", frame: frame{src: client4, dst: netip4("10.61.0.1:0").Addr(), payload: ipxeProbe(t)}, want: pass(Counters{PassUnicast: 1})},
		{name: "IPv4 fragment", frame: frame{src: client4, fragment: true, payload: ipxeProbe(t)}, want: pass(Counters{Fragments: 1})},
		{name: "IPv6 fragment", frame: frame{src: client6, fragment: true, payload: ipxeProbe(t)}, want: pass(Counters{Fragments: 1})},
		{name: "UDP to another port", frame: frame{src: client4, dport: 53, payload: ipxeProbe(t)}, want: pass(Counters{Other: 1})},
		{name: "TCP", frame: frame{src: client6, proto: 6, payload: ipxeProbe(t)}, want: pass(Counters{Other: 1})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, Options{})
			h.flag(flagForward, tt.forward)
			if tt.unsynced {
				h.flag(flagHeldSynced, false)
			}
			switch {
			case tt.peer:
				h.holdPeer(id)
			case !tt.notHeld:
				h.hold(id)
			}
			verdict, ev, c := h.run(tt.frame.bytes())
			if verdict != tt.want.verdict {
				t.Errorf("verdict %d, want %d", verdict, tt.want.verdict)
			}
			if c != tt.want.counters {
				t.Errorf("counters moved by\n%+v, want\n%+v", c, tt.want.counters)
			}
			if tt.want.ids == nil {
				if ev != nil {
					t.Fatalf("unexpected event %+v", ev)
				}
				return
			}
			if ev == nil {
				t.Fatal("no event")
			}
			if !reflect.DeepEqual(ev.SegmentIDs, tt.want.ids) || !reflect.DeepEqual(ev.Upper, tt.want.upper) ||
				ev.Held != tt.want.held || ev.Peer != tt.want.peer {
				t.Errorf("event IDs %x upper %v held %b peer %b, want %x %v %b %b",
					ev.SegmentIDs, ev.Upper, ev.Held, ev.Peer, tt.want.ids, tt.want.upper, tt.want.held, tt.want.peer)
			}
			if ev.Src.Addr().Unmap() != tt.frame.src.Addr().WithZone(ev.Src.Addr().Zone()) || ev.Src.Port() != tt.frame.src.Port() {
				t.Errorf("event source %s, want %s", ev.Src, tt.frame.src)
			}
			if ev.IfIndex != 1 {
				t.Errorf("event ifindex %d, want 1 (BPF_PROG_RUN's loopback)", ev.IfIndex)
			}
			// What the leader gets must be what the Go decoder reads.
			want, err := pccrd.ParseProbe(tt.frame.payload)
			if err != nil {
				t.Fatalf("the Go decoder refuses a captured probe: %v", err)
			}
			if got := ev.PCCRD(); !reflect.DeepEqual(got, want) {
				t.Errorf("captured probe\n%+v\ndecodes as\n%+v", got, want)
			}
		})
	}
}

func f22() []byte { return bytes.Repeat([]byte{0x22}, 32) }

// Over the per-source rate, probes are dropped and counted; other sources
// keep their own budget.
func TestRateLimit(t *testing.T) {
	h := newHarness(t, Options{RatePerSource: 1, BurstPerSource: 3})
	h.hold(mustHex(ipxeToken))
	probe := frame{src: client4, payload: ipxeProbe(t)}.bytes()
	for i := range 3 {
		if v, ev, c := h.run(probe); v != xdpDrop || ev == nil || c.Captured != 1 {
			t.Fatalf("probe %d within the burst: verdict %d, event %v, counters %+v", i, v, ev != nil, c)
		}
	}
	if v, ev, c := h.run(probe); v != xdpDrop || ev != nil || c != (Counters{Discovery: 1, DropRateLimit: 1}) {
		t.Fatalf("probe over the burst: verdict %d, event %v, counters %+v", v, ev != nil, c)
	}
	other := frame{src: client6, payload: ipxeProbe(t)}.bytes()
	if v, ev, _ := h.run(other); v != xdpDrop || ev == nil {
		t.Fatalf("another source: verdict %d, event %v", v, ev != nil)
	}
	// Other WS-Discovery traffic is never limited.
	printer := frame{src: client4, payload: scopes(t, "")}.bytes()
	for range 5 {
		if v, _, _ := h.run(printer); v != xdpPass {
			t.Fatalf("a datagram the fast path does not consume was limited: verdict %d", v)
		}
	}
}

// When the ring buffer is full the probe goes to the socket path.
func TestRingFull(t *testing.T) {
	h := newHarness(t, Options{RingSize: 4096})
	h.hold(mustHex(ipxeToken))
	probe := frame{src: client4, payload: ipxeProbe(t)}.bytes()
	var captured, full uint64
	for range 20 {
		v, err := h.p.objs.OutpostProbe.Run(&ebpf.RunOptions{Data: probe})
		if err != nil {
			t.Fatal(err)
		}
		c, _ := h.p.Totals()
		captured, full = c.Captured, c.PassRingFull
		if full > 0 && v != xdpPass {
			t.Fatalf("ring full: verdict %d, want pass", v)
		}
	}
	if captured == 0 || full == 0 || captured+full != 20 {
		t.Fatalf("captured %d, passed for a full ring %d (of 20)", captured, full)
	}
	for range captured {
		if h.event() == nil {
			t.Fatal("fewer events than captured")
		}
	}
	if v, ev, _ := h.run(probe); v != xdpDrop || ev == nil {
		t.Fatalf("after draining: verdict %d, event %v", v, ev != nil)
	}
}
