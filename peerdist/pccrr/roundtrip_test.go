package pccrr

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"reflect"
	"testing"
)

// gen builds random valid messages. Empty byte fields and arrays are nil,
// as the decoder returns them.
type gen struct{ r *rand.Rand }

func (g gen) bytes(maxLen int) []byte {
	n := g.r.IntN(maxLen + 1)
	if n == 0 {
		return nil
	}
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(g.r.Uint32())
	}
	return b
}

// segmentID is usually 32 bytes, sometimes another length (0-70) so the
// ZeroPad paths run.
func (g gen) segmentID() []byte {
	if g.r.IntN(2) == 0 {
		return g.bytesN(32)
	}
	return g.bytes(70)
}

func (g gen) bytesN(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(g.r.Uint32())
	}
	return b
}

func (g gen) crypto() CryptoAlgo { return CryptoAlgo(g.r.IntN(4)) }
func (g gen) version() ProtVer {
	return ProtVer{Major: uint16(g.r.Uint32()), Minor: uint16(g.r.Uint32())}
}

func (g gen) blockRanges(minCount int) []BlockRange {
	n := minCount + g.r.IntN(MaxBlockRanges+1-minCount)
	if g.r.IntN(3) > 0 {
		n = minCount + g.r.IntN(4) // mostly short arrays
	}
	if n == 0 {
		return nil
	}
	rs := make([]BlockRange, n)
	for i := range rs {
		index := uint32(g.r.IntN(MaxBlocks))
		rs[i] = BlockRange{Index: index, Count: 1 + uint32(g.r.IntN(MaxBlocks-int(index)))}
	}
	return rs
}

func (g gen) segmentRanges() []SegmentRange {
	n := g.r.IntN(5)
	if n == 0 {
		return nil
	}
	rs := make([]SegmentRange, n)
	for i := range rs {
		index := g.r.Uint32()
		rs[i] = SegmentRange{Index: index, Count: 1 + uint32(g.r.Uint64N(uint64(1<<32-1-uint64(index))+1))}
		if rs[i].Count == 0 || rs[i].end() > 1<<32 {
			rs[i] = SegmentRange{Index: 0, Count: 1}
		}
	}
	return rs
}

func (g gen) blob() []byte {
	switch g.r.IntN(3) {
	case 0:
		return nil
	case 1:
		return g.bytes(40) // opaque: any bytes travel
	}
	a := SegmentAges{Units: AgeUnit(1 + g.r.IntN(4))}
	for range g.r.IntN(6) {
		a.Ages = append(a.Ages, SegmentAge{Index: uint8(g.r.Uint32()), Age: g.r.Uint32N(MaxAge + 1)})
	}
	return mustBlob(a)
}

func (g gen) blk() *Blk {
	m := &Blk{
		Crypto:         g.crypto(),
		SegmentID:      g.segmentID(),
		BlockIndex:     uint32(g.r.IntN(MaxBlocks)),
		NextBlockIndex: uint32(g.r.IntN(MaxBlocks)),
	}
	switch {
	case g.r.IntN(4) == 0: // not found
		if g.r.IntN(2) == 0 {
			m.IV = g.bytesN(16)
		}
	case m.Crypto == CryptoNone:
		m.Block = g.bytesN(4 * (1 + g.r.IntN(64)))
	default:
		m.Block = g.bytesN(16 * (1 + g.r.IntN(64)))
		m.IV = g.bytesN(16)
	}
	return m
}

func (g gen) message(t MsgType) Message {
	switch t {
	case MsgNegoReq:
		return &NegoReq{Crypto: g.crypto(), MinVersion: g.version(), MaxVersion: g.version()}
	case MsgNegoResp:
		return &NegoResp{Crypto: g.crypto(), MinVersion: g.version(), MaxVersion: g.version()}
	case MsgGetBlkList:
		return &GetBlkList{Crypto: g.crypto(), SegmentID: g.segmentID(), Ranges: g.blockRanges(1)}
	case MsgBlkList:
		return &BlkList{Crypto: g.crypto(), SegmentID: g.segmentID(), Ranges: g.blockRanges(0),
			NextBlockIndex: uint32(g.r.IntN(MaxBlocks))}
	case MsgGetBlks:
		return &GetBlks{Crypto: g.crypto(), SegmentID: g.segmentID(), Ranges: g.blockRanges(1)}
	case MsgBlk:
		return g.blk()
	case MsgGetSegList:
		m := &GetSegList{Crypto: g.crypto(), RequestID: [16]byte(g.bytesN(16)), ExtensibleBlob: g.blob()}
		for range g.r.IntN(5) {
			m.SegmentIDs = append(m.SegmentIDs, g.segmentID())
		}
		return m
	case MsgSegList:
		return &SegList{Crypto: g.crypto(), RequestID: [16]byte(g.bytesN(16)), Ranges: g.segmentRanges(),
			ExtensibleBlob: g.blob()}
	}
	panic("unknown type")
}

// TestRoundTripRandomMessages: for random valid messages of every type,
// Marshal then Parse gives the same message, AppendTo appends exactly
// Marshal's bytes, and MsgSize/transport header match the length.
func TestRoundTripRandomMessages(t *testing.T) {
	g := gen{rand.New(rand.NewPCG(1, 2))}
	for typ := MsgNegoReq; typ <= MsgSegList; typ++ {
		t.Run(typ.String(), func(t *testing.T) {
			for i := range 500 {
				m := g.message(typ)
				b, err := m.Marshal()
				if err != nil {
					t.Fatalf("#%d Marshal %+v: %v", i, m, err)
				}
				got, err := parseAny(b, typ.IsResponse())
				if err != nil {
					t.Fatalf("#%d decode %x: %v", i, b, err)
				}
				if !reflect.DeepEqual(got, m) {
					t.Fatalf("#%d round trip\n got %+v\nwant %+v", i, got, m)
				}
				prefix := []byte("prefix")
				app, err := m.AppendTo(prefix)
				if err != nil || !bytes.Equal(app[len(prefix):], b) || string(app[:len(prefix)]) != "prefix" {
					t.Fatalf("#%d AppendTo differs from Marshal", i)
				}
				if len(b)%4 != 0 && typ != MsgGetSegList && typ != MsgSegList {
					t.Errorf("#%d %v of %d bytes is not 4-aligned", i, typ, len(b))
				}
			}
		})
	}
}

// TestBlkHeadBlockTailEqualsMarshal: the zero-copy path produces exactly
// Marshal's bytes.
func TestBlkHeadBlockTailEqualsMarshal(t *testing.T) {
	g := gen{rand.New(rand.NewPCG(3, 4))}
	buf := make([]byte, 0, 256)
	for i := range 500 {
		m := g.blk()
		want, err := m.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		head, err := m.AppendHead(buf[:0])
		if err != nil {
			t.Fatal(err)
		}
		tail := m.AppendTail(head[len(head):])
		got := append(append(append([]byte(nil), head...), m.Block...), tail...)
		if !bytes.Equal(got, want) {
			t.Fatalf("#%d head+block+tail differs from Marshal\n got %x\nwant %x", i, got, want)
		}
	}
}

func TestBlkHeadTailDoNotAllocate(t *testing.T) {
	m := &Blk{Crypto: CryptoAES128, SegmentID: make([]byte, 32), BlockIndex: 3, Block: make([]byte, 65552), IV: make([]byte, 16)}
	buf := make([]byte, 0, 128)
	allocs := testing.AllocsPerRun(100, func() {
		head, err := m.AppendHead(buf[:0])
		if err != nil {
			t.Fatal(err)
		}
		m.AppendTail(head[len(head):])
	})
	if allocs != 0 {
		t.Errorf("AppendHead+AppendTail: %v allocations, want 0", allocs)
	}
}

func BenchmarkBlkEncode(b *testing.B) {
	m := &Blk{Crypto: CryptoAES128, SegmentID: make([]byte, 32), BlockIndex: 3, Block: make([]byte, 65552), IV: make([]byte, 16)}
	buf := make([]byte, 0, 128)
	b.ReportAllocs()
	for b.Loop() {
		head, err := m.AppendHead(buf[:0])
		if err != nil {
			b.Fatal(err)
		}
		m.AppendTail(head[len(head):])
	}
}

// TestBlkEncodeRules: what MSG_BLK refuses to put on the wire.
func TestBlkEncodeRules(t *testing.T) {
	iv := make([]byte, 16)
	tests := []struct {
		name string
		m    Blk
		ok   bool
	}{
		{"plaintext multiple of 4", Blk{Block: make([]byte, 8)}, true},
		{"plaintext not multiple of 4 (iPXE assumes no ZeroPad_2)", Blk{Block: make([]byte, 6)}, false},
		{"AES not multiple of 16", Blk{Crypto: CryptoAES128, Block: make([]byte, 20), IV: iv}, false},
		{"AES without IV", Blk{Crypto: CryptoAES128, Block: make([]byte, 16)}, false},
		{"IV of 8 bytes", Blk{Crypto: CryptoAES128, Block: make([]byte, 16), IV: iv[:8]}, false},
		{"not found with AES header", Blk{Crypto: CryptoAES128}, true},
		{"BlockIndex 512", Blk{BlockIndex: 512}, false},
		{"NextBlockIndex 512", Blk{NextBlockIndex: 512}, false},
		{"CryptoAlgo 4", Blk{Crypto: 4}, false},
	}
	for _, tt := range tests {
		b, err := tt.m.Marshal()
		if (err == nil) != tt.ok {
			t.Errorf("%s: err %v, want ok %v", tt.name, err, tt.ok)
		}
		if err != nil && (b != nil || !errors.Is(err, ErrMalformed)) {
			t.Errorf("%s: failed encode returned %x, %v", tt.name, b, err)
		}
	}
}
