package pccrr

import (
	"encoding/binary"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/outpost-appliance/outpost/peerdist/vectors"
)

// TestSpecErrata9_TransportHeaderLimit384KiB: the spec limits the
// transport header Size to 96 KiB, but a V2 segment (up to 128 KiB, 131 088
// bytes encrypted) must fit, so responses go up to 384 KiB and requests to
// 96 KiB (protocols.md §3.2, §9 row 9).
func TestSpecErrata9_TransportHeaderLimit384KiB(t *testing.T) {
	seg := make([]byte, 32)
	iv := make([]byte, 16)
	blk := func(n int) *Blk { return &Blk{Crypto: CryptoAES256, SegmentID: seg, Block: make([]byte, n), IV: iv} }
	overhead := blk(0).msgSize()

	v2 := blk(131088)
	b, err := v2.Marshal()
	if err != nil {
		t.Fatalf("V2 segment MSG_BLK: %v", err)
	}
	if len(b) <= 96*1024 {
		t.Fatalf("test setup: %d bytes does not exceed 96 KiB", len(b))
	}
	if m, err := ParseResponse(b); err != nil || len(m.(*Blk).Block) != 131088 {
		t.Fatalf("ParseResponse of a %d-byte MSG_BLK: %v", len(b), err)
	}

	largest := (MaxResponseSize - overhead) &^ 15
	if b, err := blk(largest).Marshal(); err != nil {
		t.Errorf("%d-byte block: %v", largest, err)
	} else if _, err := ParseResponse(b); err != nil {
		t.Errorf("ParseResponse at %d bytes: %v", len(b)-4, err)
	}
	if _, err := blk(largest + 16).Marshal(); !errors.Is(err, ErrMalformed) {
		t.Errorf("MSG_BLK beyond 384 KiB: err %v, want ErrMalformed", err)
	}

	// A response exactly one byte over: refused before the body is read.
	over := make([]byte, 4+MaxResponseSize+1)
	binary.BigEndian.PutUint32(over, MaxResponseSize+1)
	(&Header{Version: ProtVer{Major: 1}, Type: MsgBlk, Size: MaxResponseSize + 1}).AppendTo(over[4:4])
	if _, err := ParseResponse(over); !errors.Is(err, ErrMalformed) {
		t.Errorf("393 217-byte response: err %v, want ErrMalformed", err)
	}

	// Requests: 96 KiB is the most, MsgSize included.
	req := func(idBytes int) *GetSegList {
		return &GetSegList{SegmentIDs: [][]byte{make([]byte, idBytes)}}
	}
	fit := MaxRequestSize - req(0).msgSize()
	if b, err := req(fit).Marshal(); err != nil || len(b) != MaxRequestSize {
		t.Errorf("98 304-byte request: %d bytes, %v", len(b), err)
	} else if _, err := ParseRequest(b); err != nil {
		t.Errorf("ParseRequest at the limit: %v", err)
	}
	if _, err := req(fit + 4).Marshal(); !errors.Is(err, ErrMalformed) {
		t.Errorf("request over 96 KiB: err %v, want ErrMalformed", err)
	}
	big := make([]byte, MaxRequestSize+4)
	(&Header{Version: ProtVer{Major: 2}, Type: MsgGetSegList, Size: uint32(len(big))}).AppendTo(big[:0])
	if _, err := ParseRequest(big); !errors.Is(err, ErrMalformed) {
		t.Errorf("oversized request: err %v, want ErrMalformed", err)
	}
}

// TestSpecErrata11_AgeUnitsComeFromTheBlob: the spec's field text claims a
// default unit of "hundredths of milliseconds"; the blob's unit field is
// what counts (protocols.md §9 row 11).
func TestSpecErrata11_AgeUnitsComeFromTheBlob(t *testing.T) {
	for _, tt := range []struct {
		unit AgeUnit
		want time.Duration
	}{
		{AgeSeconds, 60000 * time.Second},
		{AgeDeciseconds, 6000 * time.Second},
		{AgeCentiseconds, 600 * time.Second},
		{AgeMilliseconds, 60 * time.Second},
	} {
		blob := mustBlob(SegmentAges{Units: tt.unit, Ages: []SegmentAge{{Index: 2, Age: 60000}}})
		a, err := ParseSegmentAges(blob)
		if err != nil {
			t.Fatalf("%v: %v", tt.unit, err)
		}
		if got := a.Duration(0); got != tt.want {
			t.Errorf("60000 × %v = %v, want %v", tt.unit, got, tt.want)
		}
		if got := tt.unit.Age(tt.want); got != 60000 {
			t.Errorf("%v.Age(%v) = %d, want 60000", tt.unit, tt.want, got)
		}
	}
	// No unit, no default: a blob with unit 0 or 5 is dropped.
	for _, unit := range []byte{0, 5, 0xff} {
		if _, err := ParseSegmentAges([]byte{0, 1, unit, 0}); !errors.Is(err, ErrMalformed) {
			t.Errorf("unit %d: err %v, want ErrMalformed", unit, err)
		}
	}
	// Clamping: 46.6 h is the most hundredths fit in 24 bits.
	if got := AgeCentiseconds.Age(100 * time.Hour); got != MaxAge {
		t.Errorf("100 h clamps to %d, want %d", got, MaxAge)
	}
	if got := AgeCentiseconds.Age(-time.Second); got != 0 {
		t.Errorf("negative age %d, want 0", got)
	}
}

// TestSpecErrata16_NegoBothDirections: Windows never sends MSG_NEGO_REQ
// but the MS test design has the hosted cache send one, so both ends must
// work: we encode and decode NEGO_REQ and NEGO_RESP, answer a request in
// an unknown major with NEGO_RESP, and pick the highest common major.
func TestSpecErrata16_NegoBothDirections(t *testing.T) {
	pd := vectors.GoldenTable(t, "peerdist-vectors", "derived", "golden_messages.tsv")
	ms := vectors.GoldenTable(t, "mstest-vectors", "derived", "golden_messages.txt")

	// As a client: send NEGO_REQ, read the NEGO_RESP.
	reqBytes, err := NewNegoReq().Marshal()
	if err != nil {
		t.Fatal(err)
	}
	// As a server: read NEGO_REQ, answer.
	got, err := ParseRequest(reqBytes)
	if err != nil || !reflect.DeepEqual(got, NewNegoReq()) {
		t.Fatalf("server reading our NEGO_REQ: %+v, %v", got, err)
	}
	if major, ok := got.(*NegoReq).CommonMajor(); !ok || major != 2 {
		t.Errorf("common major with ourselves %d %v, want 2", major, ok)
	}
	resp := mustParse(t, vectors.Lookup(t, pd, "pccrr_nego_resp_1.0-2.0"), true).(*NegoResp)
	if major, ok := resp.CommonMajor(); !ok || major != 2 {
		t.Errorf("common major %d %v, want 2", major, ok)
	}
	// The MS suite's peer only speaks 1.0.
	msReq := mustParse(t, vectors.Lookup(t, ms, "pccrr_nego_req_v1"), false).(*NegoReq)
	if major, ok := msReq.CommonMajor(); !ok || major != 1 {
		t.Errorf("common major with a 1.0-only peer %d %v, want 1", major, ok)
	}

	for _, tt := range []struct {
		lo, hi ProtVer
		major  uint16
		ok     bool
	}{
		{ProtVer{Major: 1}, ProtVer{Major: 1, Minor: 7}, 1, true},
		{ProtVer{Major: 2}, ProtVer{Major: 5}, 2, true},
		{ProtVer{Major: 0}, ProtVer{Major: 9}, 2, true},
		{ProtVer{Major: 3}, ProtVer{Major: 4}, 0, false},
		{ProtVer{Major: 0}, ProtVer{Major: 0}, 0, false},
		{ProtVer{Major: 2}, ProtVer{Major: 1}, 0, false},
	} {
		if major, ok := CommonMajor(tt.lo, tt.hi); major != tt.major || ok != tt.ok {
			t.Errorf("CommonMajor(%v, %v) = %d %v, want %d %v", tt.lo, tt.hi, major, ok, tt.major, tt.ok)
		}
	}

	// A GETBLKS in version 3.0 gets a NEGO_RESP: the server sees a
	// *VersionError carrying the header.
	getBlks := append([]byte(nil), vectors.Lookup(t, pd, "pccrr_getblks_v1seg_blk0")...)
	binary.BigEndian.PutUint32(getBlks, ProtVer{Major: 3}.wire())
	_, err = ParseRequest(getBlks)
	var ve *VersionError
	if !errors.As(err, &ve) || ve.Header.Type != MsgGetBlks || ve.Header.Version.Major != 3 {
		t.Fatalf("3.0 GETBLKS: err %v, want *VersionError", err)
	}
	if errors.Is(err, ErrMalformed) {
		t.Errorf("a VersionError must not look malformed (the server would send 400)")
	}
	// NEGO itself works whatever version its header claims (the MS suite's
	// peer answers NEGO with 0.0).
	for _, v := range []ProtVer{{}, {Major: 9, Minor: 9}} {
		b := append([]byte(nil), vectors.Lookup(t, pd, "pccrr_nego_resp_1.0-2.0")...)
		binary.BigEndian.PutUint32(b[4:], v.wire())
		if _, err := ParseResponse(b); err != nil {
			t.Errorf("NEGO_RESP with header %v: %v", v, err)
		}
		b = append(b[:0], reqBytes...)
		binary.BigEndian.PutUint32(b, v.wire())
		if _, err := ParseRequest(b); err != nil {
			t.Errorf("NEGO_REQ with header %v: %v", v, err)
		}
	}
}

// TestSpecErrata17_HeaderValidation: the MS test suite's "VersionIncompatible
// / MsgTypeInvalid / CryptoAlgoIdInvalid" cases never send a request, so
// they prove nothing (protocols.md §9 row 17); this is what our decoder
// does. Unsupported major → *VersionError (answer NEGO_RESP); unknown or
// wrong-direction MsgType and CryptoAlgoId above 3 → ErrMalformed (HTTP
// 400); a supported major that is not the type's own, and any minor, are
// accepted (see checkHeader).
func TestSpecErrata17_HeaderValidation(t *testing.T) {
	pd := vectors.GoldenTable(t, "peerdist-vectors", "derived", "golden_messages.tsv")
	base := vectors.Lookup(t, pd, "pccrr_getblks_v1seg_blk0")
	const (
		ok = iota
		version
		bad
	)
	tests := []struct {
		name    string
		field   int // byte offset of the header DWORD to change
		value   uint32
		outcome int
	}{
		{"version 1.0", 0, ProtVer{Major: 1}.wire(), ok},
		{"version 1.5 (minor ignored)", 0, ProtVer{Major: 1, Minor: 5}.wire(), ok},
		{"version 2.0 (supported major, not the type's)", 0, ProtVer{Major: 2}.wire(), ok},
		{"version 0.0", 0, 0, version},
		{"version 0.1", 0, ProtVer{Minor: 1}.wire(), version},
		{"version 3.0", 0, ProtVer{Major: 3}.wire(), version},
		{"version 0xffff.0xffff", 0, 0xffffffff, version},
		{"MsgType 8", 4, 8, bad},
		{"MsgType 0xffffffff", 4, 0xffffffff, bad},
		{"MsgType MSG_BLK in a request", 4, uint32(MsgBlk), bad},
		{"MsgType MSG_NEGO_RESP in a request", 4, uint32(MsgNegoResp), bad},
		{"CryptoAlgoId 0", 12, 0, ok},
		{"CryptoAlgoId 3", 12, 3, ok},
		{"CryptoAlgoId 4", 12, 4, bad},
		{"CryptoAlgoId 0xffffffff", 12, 0xffffffff, bad},
	}
	for _, tt := range tests {
		b := append([]byte(nil), base...)
		binary.BigEndian.PutUint32(b[tt.field:], tt.value)
		_, err := ParseRequest(b)
		var ve *VersionError
		switch tt.outcome {
		case ok:
			if err != nil {
				t.Errorf("%s: %v", tt.name, err)
			}
		case version:
			if !errors.As(err, &ve) {
				t.Errorf("%s: err %v, want *VersionError", tt.name, err)
			}
		case bad:
			if !errors.Is(err, ErrMalformed) || errors.As(err, &ve) {
				t.Errorf("%s: err %v, want ErrMalformed", tt.name, err)
			}
		}
	}
	// An unknown type in an unknown major is a version problem first: a
	// future major may define it.
	b := append([]byte(nil), base...)
	binary.BigEndian.PutUint32(b, ProtVer{Major: 3}.wire())
	binary.BigEndian.PutUint32(b[4:], 42)
	var ve *VersionError
	if _, err := ParseRequest(b); !errors.As(err, &ve) {
		t.Errorf("type 42 in 3.0: err %v, want *VersionError", err)
	}
	// Responses follow the same rules.
	resp := append([]byte(nil), vectors.Lookup(t, pd, "pccrr_blk_notfound_v1seg_blk0")...)
	binary.BigEndian.PutUint32(resp[16:], 4)
	if _, err := ParseResponse(resp); !errors.Is(err, ErrMalformed) {
		t.Errorf("MSG_BLK with CryptoAlgoId 4: err %v, want ErrMalformed", err)
	}
}
