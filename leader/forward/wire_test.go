package forward

import (
	"bytes"
	"errors"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/outpost-appliance/outpost/peerdist/pccrc"
	"github.com/outpost-appliance/outpost/peerdist/pccrd"
)

var (
	testKey  = DeriveKey([]byte("correct horse battery staple"))
	otherKey = DeriveKey([]byte("not the shared secret at all"))
	testNow  = time.UnixMilli(1_780_000_000_000)
)

func id(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }

func sampleMessages() []*Envelope {
	req := NewEnvelope(testNow)
	req.Request = &Request{MessageID: "urn:uuid:0b9b4a4e-4c3b-4b8e-9d55-0a3c2f1e6d7a", Version: pccrd.V1,
		SegmentIDs: [][]byte{id(1)}}
	req2 := NewEnvelope(testNow)
	req2.Request = &Request{MessageID: "urn:uuid:x", Version: pccrd.V2, SegmentIDs: [][]byte{id(2), id(3), bytes.Repeat([]byte{4}, 64)}}
	rep := NewEnvelope(testNow)
	rep.Reply = &Reply{MessageID: "urn:uuid:y", Entries: []Entry{
		{SegmentID: id(1), Version: pccrc.V1, Size: 200000, Blocks: 4, Complete: true,
			Holders: []netip.AddrPort{netip.MustParseAddrPort("0.0.0.0:1337")}},
		{SegmentID: id(2), Version: 0, Blocks: 0, Holders: []netip.AddrPort{
			netip.MustParseAddrPort("10.2.0.7:1337"), netip.MustParseAddrPort("[fd00::7]:54321")}},
	}}
	empty := NewEnvelope(testNow)
	empty.Reply = &Reply{MessageID: "urn:uuid:z"}
	ka := NewEnvelope(testNow)
	ka.Keepalive = &Keepalive{}
	ack := NewEnvelope(testNow)
	ack.Ack = &KeepaliveAck{Nonce: ka.Nonce}
	return []*Envelope{req, req2, rep, empty, ka, ack}
}

func TestSealOpenRoundTrip(t *testing.T) {
	for _, e := range sampleMessages() {
		b, err := Seal(testKey, e)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Open(testKey, b)
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		if !got.Time.Equal(e.Time) || got.Nonce != e.Nonce || got.Type != e.Type {
			t.Errorf("header: got %+v want %+v", got, e)
		}
		if !reflect.DeepEqual(got.Request, e.Request) || !reflect.DeepEqual(normalize(got.Reply), normalize(e.Reply)) ||
			!reflect.DeepEqual(got.Keepalive, e.Keepalive) || !reflect.DeepEqual(got.Ack, e.Ack) {
			t.Errorf("body: got %+v / %+v / %+v / %+v, want %+v / %+v / %+v / %+v",
				got.Request, got.Reply, got.Keepalive, got.Ack, e.Request, e.Reply, e.Keepalive, e.Ack)
		}
	}
}

// normalize makes nil and empty entry lists compare equal.
func normalize(r *Reply) *Reply {
	if r == nil || len(r.Entries) > 0 {
		return r
	}
	return &Reply{MessageID: r.MessageID}
}

func TestOpenRejects(t *testing.T) {
	good, err := Seal(testKey, sampleMessages()[2])
	if err != nil {
		t.Fatal(err)
	}
	forged, _ := Seal(otherKey, sampleMessages()[2])
	flip := func(i int) []byte { b := bytes.Clone(good); b[i] ^= 1; return b }
	v2 := flip(4)
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"wrong secret", forged, ErrAuth},
		{"tampered body", flip(40), ErrAuth},
		{"tampered timestamp", flip(12), ErrAuth},
		{"tampered MAC", flip(len(good) - 1), ErrAuth},
		{"other version", v2, ErrVersion},
		{"bad magic", flip(0), ErrMalformed},
		{"length mismatch", append(bytes.Clone(good), 0), ErrMalformed},
		{"empty", nil, ErrMalformed},
		{"oversized", make([]byte, MaxMessageSize+1), ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Open(testKey, tt.in); !errors.Is(err, tt.want) {
				t.Errorf("got %v, want %v", err, tt.want)
			}
		})
	}
	for n := range len(good) {
		if _, err := Open(testKey, good[:n]); err == nil {
			t.Fatalf("truncated to %d bytes: accepted", n)
		}
	}
}

// TestOpenAuthenticatedGarbage: a peer holding the secret can still send
// a broken body; it is malformed, never a panic.
func TestOpenAuthenticatedGarbage(t *testing.T) {
	for _, body := range [][]byte{{}, {0}, {5, 'a'}, {1, 'a', 9, 1, 32}, {1, 'a', 1, 0}, {1, 'a', 1, 1, 'x', 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 7}} {
		for _, typ := range []Type{TypeRequest, TypeReply, 9} {
			b := rawSeal(testKey, typ, body)
			if _, err := Open(testKey, b); !errors.Is(err, ErrMalformed) {
				t.Errorf("type %d body %x: got %v, want malformed", typ, body, err)
			}
		}
	}
}

// TestKeepaliveWire: a keepalive is the bare header and MAC; an ack
// carries exactly the 16-byte nonce; anything else is malformed.
func TestKeepaliveWire(t *testing.T) {
	msgs := sampleMessages()
	ka, ack := msgs[4], msgs[5]
	b, err := Seal(testKey, ka)
	if err != nil || len(b) != HeaderSize+MACSize || Type(b[5]) != TypeKeepalive {
		t.Fatalf("keepalive: %d bytes, type %d, %v", len(b), b[5], err)
	}
	b, err = Seal(testKey, ack)
	if err != nil || len(b) != HeaderSize+16+MACSize || Type(b[5]) != TypeKeepaliveAck || !bytes.Equal(b[HeaderSize:HeaderSize+16], ka.Nonce[:]) {
		t.Fatalf("ack: %x, %v", b, err)
	}
	tests := []struct {
		name string
		typ  Type
		body []byte
	}{
		{"keepalive with a body", TypeKeepalive, []byte{0}},
		{"keepalive with a nonce", TypeKeepalive, make([]byte, 16)},
		{"empty ack", TypeKeepaliveAck, nil},
		{"short ack", TypeKeepaliveAck, make([]byte, 15)},
		{"long ack", TypeKeepaliveAck, make([]byte, 17)},
		{"unknown type 5", 5, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Open(testKey, rawSeal(testKey, tt.typ, tt.body)); !errors.Is(err, ErrMalformed) {
				t.Errorf("got %v, want malformed", err)
			}
		})
	}
	forged, _ := Seal(otherKey, ack)
	if _, err := Open(testKey, forged); !errors.Is(err, ErrAuth) {
		t.Errorf("forged ack: got %v, want %v", err, ErrAuth)
	}
}

func TestSealRefuses(t *testing.T) {
	bad := []*Envelope{
		{},
		{Request: &Request{MessageID: "", Version: pccrd.V1, SegmentIDs: [][]byte{id(1)}}},
		{Request: &Request{MessageID: "m", Version: 3, SegmentIDs: [][]byte{id(1)}}},
		{Request: &Request{MessageID: "m", Version: pccrd.V1}},
		{Request: &Request{MessageID: "m", Version: pccrd.V1, SegmentIDs: [][]byte{make([]byte, 65)}}},
		{Reply: &Reply{MessageID: "m", Entries: []Entry{{SegmentID: id(1), Holders: make([]netip.AddrPort, 5)}}}},
		{Keepalive: &Keepalive{}, Ack: &KeepaliveAck{}},
		{Keepalive: &Keepalive{}, Request: &Request{MessageID: "m", Version: pccrd.V1, SegmentIDs: [][]byte{id(1)}}},
	}
	for i, e := range bad {
		if _, err := Seal(testKey, e); err == nil {
			t.Errorf("case %d: sealed", i)
		}
	}
}

func TestGuard(t *testing.T) {
	g := NewGuard(30 * time.Second)
	e := NewEnvelope(testNow)
	tests := []struct {
		name string
		env  *Envelope
		now  time.Time
		want error
	}{
		{"fresh", e, testNow.Add(time.Second), nil},
		{"replayed", e, testNow.Add(2 * time.Second), ErrReplayed},
		{"old", NewEnvelope(testNow.Add(-31 * time.Second)), testNow, ErrStale},
		{"from the future", NewEnvelope(testNow.Add(31 * time.Second)), testNow, ErrStale},
		{"edge of the window", NewEnvelope(testNow.Add(-29 * time.Second)), testNow, nil},
	}
	for _, tt := range tests {
		if err := g.Check(tt.env, tt.now); !errors.Is(err, tt.want) {
			t.Errorf("%s: got %v, want %v", tt.name, err, tt.want)
		}
	}
}

func FuzzOpen(f *testing.F) {
	for _, e := range sampleMessages() {
		b, _ := Seal(testKey, e)
		f.Add(b)
		f.Add(b[:len(b)/2])
	}
	f.Add(rawSeal(testKey, TypeReply, []byte{1, 'a', 1, 1, 'x', 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 6}))
	f.Add(rawSeal(testKey, TypeKeepalive, []byte{0}))
	f.Add(rawSeal(testKey, TypeKeepaliveAck, make([]byte, 15)))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := Open(testKey, b)
		if err != nil {
			return
		}
		again, err := Seal(testKey, e)
		if err != nil {
			t.Fatalf("accepted message does not re-encode: %v", err)
		}
		if _, err := Open(testKey, again); err != nil {
			t.Fatalf("re-encoded message does not open: %v", err)
		}
	})
}

// rawSeal frames and authenticates an arbitrary body.
func rawSeal(key Key, typ Type, body []byte) []byte {
	e := NewEnvelope(testNow)
	e.Request = &Request{MessageID: "m", Version: pccrd.V1, SegmentIDs: [][]byte{{1}}}
	b, _ := Seal(key, e)
	b = append(b[:HeaderSize:HeaderSize], body...)
	b[5] = byte(typ)
	b[6], b[7] = byte(len(body)>>8), byte(len(body))
	return sealTail(key, b)
}
