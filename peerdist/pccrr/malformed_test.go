package pccrr

import (
	"encoding/binary"
	"errors"
	"testing"

	"github.com/outpost-appliance/outpost/peerdist/allocs"
)

// allocSlack is the fixed allowance in allocation checks: error values,
// the message struct, and noise in the measurement (runtime.MemStats sees
// the whole process; a few KiB show up at times).
const allocSlack = 16 << 10

// raw builds a message from DWORDs and byte strings exactly as given (no
// padding added, no checks), with the right MsgSize and, for responses,
// transport header.
func raw(t MsgType, crypto CryptoAlgo, fields ...any) []byte {
	var body []byte
	for _, f := range fields {
		switch f := f.(type) {
		case int:
			body = appendU32(body, uint32(f))
		case uint32:
			body = appendU32(body, f)
		case []byte:
			body = append(body, f...)
		default:
			panic("raw: field type")
		}
	}
	size := HeaderSize + len(body)
	var out []byte
	if t.IsResponse() {
		out = appendU32(out, uint32(size))
	}
	out = Header{Version: VersionFor(t), Type: t, Size: uint32(size), Crypto: crypto}.AppendTo(out)
	return append(out, body...)
}

var (
	seg32 = make([]byte, 32)
	iv16  = make([]byte, 16)
)

// TestMalformedInputs: hand-made bad messages, each with the reason it is
// bad. All must be refused with ErrMalformed, none may panic.
func TestMalformedInputs(t *testing.T) {
	const huge = 0xffffffff
	tests := []struct {
		name string
		resp bool
		b    []byte
	}{
		{"empty request", false, nil},
		{"15-byte request", false, make([]byte, 15)},
		{"MsgSize below the length", false, func() []byte {
			b := raw(MsgNegoReq, 0, 1, 2)
			binary.BigEndian.PutUint32(b[8:], 16)
			return b
		}()},
		{"MsgSize above the length", false, func() []byte {
			b := raw(MsgNegoReq, 0, 1, 2)
			binary.BigEndian.PutUint32(b[8:], 100)
			return b
		}()},
		{"NEGO_REQ without body", false, raw(MsgNegoReq, 0)},
		{"NEGO_REQ with extra bytes", false, raw(MsgNegoReq, 0, 1, 2, 3)},
		{"GETBLKLIST SegmentID size 2^32-1", false, raw(MsgGetBlkList, 1, huge, seg32, 1, 0, 1)},
		{"GETBLKLIST range count 2^32-1", false, raw(MsgGetBlkList, 1, 32, seg32, huge, 0, 1)},
		{"GETBLKLIST range count 0", false, raw(MsgGetBlkList, 1, 32, seg32, 0)},
		{"GETBLKLIST range index 512", false, raw(MsgGetBlkList, 1, 32, seg32, 1, 512, 1)},
		{"GETBLKLIST range count 0 blocks", false, raw(MsgGetBlkList, 1, 32, seg32, 1, 0, 0)},
		{"GETBLKLIST range past 512", false, raw(MsgGetBlkList, 1, 32, seg32, 1, 511, 2)},
		{"GETBLKLIST 257 ranges", false, raw(MsgGetBlkList, 1, 32, seg32, 257, make([]byte, 257*8))},
		{"GETBLKLIST missing pad", false, raw(MsgGetBlkList, 1, 3, []byte{1, 2, 3}, 1, 0, 1)},
		{"GETBLKS no DataForVrfBlock size", false, raw(MsgGetBlks, 1, 32, seg32, 1, 0, 1)},
		{"GETBLKS DataForVrfBlock size 2^32-1", false, raw(MsgGetBlks, 1, 32, seg32, 1, 0, 1, huge)},
		{"GETBLKS trailing byte", false, raw(MsgGetBlks, 1, 32, seg32, 1, 0, 1, 0, []byte{0})},
		{"GETSEGLIST short RequestID", false, raw(MsgGetSegList, 1, make([]byte, 10))},
		{"GETSEGLIST count 2^32-1", false, raw(MsgGetSegList, 1, iv16, huge, 32, seg32, 0)},
		{"GETSEGLIST count beyond IDs", false, raw(MsgGetSegList, 1, iv16, 3, 32, seg32, 0)},
		{"GETSEGLIST blob size 2^32-1", false, raw(MsgGetSegList, 1, iv16, 1, 32, seg32, huge)},
		{"GETSEGLIST no blob size", false, raw(MsgGetSegList, 1, iv16, 1, 32, seg32)},
		{"response in a request", false, raw(MsgBlkList, 1, 32, seg32, 0, 0)[4:]},

		{"empty response", true, nil},
		{"3-byte response", true, []byte{0, 0, 0}},
		{"transport Size too small", true, func() []byte {
			b := raw(MsgNegoResp, 0, 1, 2)
			binary.BigEndian.PutUint32(b, 20)
			return b
		}()},
		{"transport Size too large", true, func() []byte {
			b := raw(MsgNegoResp, 0, 1, 2)
			binary.BigEndian.PutUint32(b, huge)
			return b
		}()},
		{"MsgSize differs from transport Size", true, func() []byte {
			b := raw(MsgNegoResp, 0, 1, 2)
			binary.BigEndian.PutUint32(b[12:], 20)
			return b
		}()},
		{"transport header only", true, []byte{0, 0, 0, 0}},
		{"request in a response", true, append(appendU32(nil, 24), raw(MsgNegoReq, 0, 1, 2)...)},
		{"BLKLIST NextBlockIndex 512", true, raw(MsgBlkList, 1, 32, seg32, 0, 512)},
		{"BLKLIST range count 2^32-1", true, raw(MsgBlkList, 1, 32, seg32, huge, 0)},
		{"BLK SizeOfBlock 2^32-1", true, raw(MsgBlk, 1, 32, seg32, 0, 0, huge, 0, 16, iv16)},
		{"BLK SizeOfVrfBlock 2^32-1", true, raw(MsgBlk, 1, 32, seg32, 0, 0, 16, iv16, huge, 16, iv16)},
		{"BLK SizeOfIVBlock 2^32-1", true, raw(MsgBlk, 1, 32, seg32, 0, 0, 16, iv16, 0, huge, iv16)},
		{"BLK IV of 8 bytes", true, raw(MsgBlk, 1, 32, seg32, 0, 0, 16, iv16, 0, 8, iv16[:8])},
		{"BLK AES block without IV", true, raw(MsgBlk, 1, 32, seg32, 0, 0, 16, iv16, 0, 0)},
		{"BLK AES block of 20 bytes", true, raw(MsgBlk, 1, 32, seg32, 0, 0, 20, make([]byte, 20), 0, 16, iv16)},
		{"BLK plaintext of 5 bytes (ZeroPad_2)", true, raw(MsgBlk, 0, 32, seg32, 0, 0, 5, make([]byte, 8), 0, 0)},
		{"BLK BlockIndex 512", true, raw(MsgBlk, 0, 32, seg32, 512, 0, 0, 0, 0)},
		{"BLK missing IV size", true, raw(MsgBlk, 0, 32, seg32, 0, 0, 0, 0)},
		{"SEGLIST range count 2^32-1", true, raw(MsgSegList, 1, iv16, huge, 0)},
		{"SEGLIST empty range", true, raw(MsgSegList, 1, iv16, 1, 0, 0, 0)},
		{"SEGLIST range past 2^32", true, raw(MsgSegList, 1, iv16, 1, huge, 2, 0)},
		{"SEGLIST blob size beyond the message", true, raw(MsgSegList, 1, iv16, 0, 8, []byte{0, 1, 3, 0})},
	}
	for _, tt := range tests {
		_, err := parseAny(tt.b, tt.resp)
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err %v, want ErrMalformed", tt.name, err)
		}
	}
	// Sanity: the builder makes valid messages when the fields are right.
	for _, ok := range []struct {
		resp bool
		b    []byte
	}{
		{false, raw(MsgGetBlks, 1, 32, seg32, 1, 0, 1, 0)},
		{false, raw(MsgGetBlks, 1, 32, seg32, 1, 0, 1, 3, []byte{9, 9, 9})},             // DataForVrfBlock ignored
		{true, raw(MsgBlk, 1, 32, seg32, 0, 0, 16, iv16, 5, make([]byte, 8), 16, iv16)}, // VrfBlock skipped
		{true, raw(MsgBlk, 1, 3, []byte{1, 2, 3, 0xee}, 0, 0, 0, 0, 0)},                 // pad bytes not checked
		{true, raw(MsgSegList, 1, iv16, 0, 3, []byte{1, 2, 3})},                         // opaque blob
	} {
		if _, err := parseAny(ok.b, ok.resp); err != nil {
			t.Errorf("valid %x: %v", ok.b, err)
		}
	}
}

// TestTruncatedVectorsFail cuts every vector at every byte, both as is (the
// sizes then disagree with the length) and with MsgSize and the transport
// Size patched to the cut length (so the body decoder meets the short
// field). Every cut must be an error, never a panic; so must one extra byte.
func TestTruncatedVectorsFail(t *testing.T) {
	for _, g := range goldenPCCRR(t) {
		_, err := ParseResponse(g.Data)
		resp := err == nil
		if !resp {
			if _, err = ParseRequest(g.Data); err != nil {
				t.Fatalf("%s: %v", g.Name, err)
			}
		}
		hdr := 0
		if resp {
			hdr = TransportHeaderSize
		}
		buf := make([]byte, len(g.Data)+1)
		for n := 0; n < len(g.Data); n++ {
			cut := buf[:n]
			copy(cut, g.Data)
			if _, err := parseAny(cut, resp); err == nil {
				t.Fatalf("%s cut to %d bytes decoded", g.Name, n)
			}
			if n >= hdr+HeaderSize {
				if resp {
					binary.BigEndian.PutUint32(cut, uint32(n-hdr))
				}
				binary.BigEndian.PutUint32(cut[hdr+8:], uint32(n-hdr))
				if _, err := parseAny(cut, resp); !errors.Is(err, ErrMalformed) {
					t.Fatalf("%s cut to %d bytes with patched sizes: %v", g.Name, n, err)
				}
			}
		}
		long := append(append([]byte(nil), g.Data...), 0)
		if _, err := parseAny(long, resp); err == nil {
			t.Errorf("%s with an extra byte decoded", g.Name)
		}
	}
}

// TestDecodeAllocationBounded: counts and sizes claiming up to 2^32-1 items
// must be checked against the bytes left before anything is allocated, and
// the biggest legal messages must allocate in proportion to their size.
func TestDecodeAllocationBounded(t *testing.T) {
	const huge = 0xffffffff
	many := make([]byte, 0, MaxRequestSize)
	for range 256 {
		many = appendU32(appendU32(many, 0), 1)
	}
	// As many zero-length segment IDs as fit: the worst case for the
	// [][]byte slice headers (24 bytes per 4 input bytes).
	zeroIDs := (MaxRequestSize - HeaderSize - 16 - 4 - 4) / 4
	maxBlk := (&Blk{Crypto: CryptoAES256, SegmentID: seg32, IV: iv16,
		Block: make([]byte, (MaxResponseSize-200)&^15)})
	maxBlkBytes, err := maxBlk.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		resp   bool
		b      []byte
		factor uint64
	}{
		{"GETBLKLIST range count 2^32-1", false, raw(MsgGetBlkList, 1, 32, seg32, huge, 0, 1), 0},
		{"GETBLKLIST SegmentID size 2^32-1", false, raw(MsgGetBlkList, 1, huge, seg32), 0},
		{"GETBLKS range count 2^32-1", false, raw(MsgGetBlks, 1, 32, seg32, huge, 0, 1, 0), 0},
		{"GETSEGLIST count 2^32-1", false, raw(MsgGetSegList, 1, iv16, huge, 32, seg32, 0), 0},
		{"GETSEGLIST blob 2^32-1", false, raw(MsgGetSegList, 1, iv16, 0, huge), 0},
		{"BLKLIST range count 2^32-1", true, raw(MsgBlkList, 1, 32, seg32, huge, 0), 0},
		{"BLK SizeOfBlock 2^32-1", true, raw(MsgBlk, 1, 32, seg32, 0, 0, huge, 0), 0},
		{"SEGLIST range count 2^32-1", true, raw(MsgSegList, 1, iv16, huge, 0), 0},
		{"GETBLKLIST 256 ranges", false, raw(MsgGetBlkList, 1, 32, seg32, 256, many), 2},
		{"GETSEGLIST of empty IDs", false, raw(MsgGetSegList, 1, iv16, zeroIDs, make([]byte, 4*zeroIDs), 0), 7},
		{"MSG_BLK of 384 KiB (block aliased)", true, maxBlkBytes, 0},
	}
	for _, tt := range tests {
		allocs.Bounded(t, tt.name, tt.b, tt.factor, allocSlack, func(b []byte) { _, _ = parseAny(b, tt.resp) })
	}
}
