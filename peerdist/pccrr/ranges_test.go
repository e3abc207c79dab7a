package pccrr

import (
	"errors"
	"math/rand/v2"
	"reflect"
	"testing"
)

// model is a plain bool-array BlockSet to test against.
type model [MaxBlocks]bool

func (m *model) add(rs []BlockRange) {
	for _, r := range rs {
		for i := uint64(r.Index); i < r.end() && i < MaxBlocks; i++ {
			m[i] = true
		}
	}
}

func (m *model) ranges() []BlockRange {
	var out []BlockRange
	for i := 0; i < MaxBlocks; i++ {
		if !m[i] {
			continue
		}
		j := i
		for j < MaxBlocks && m[j] {
			j++
		}
		out = append(out, BlockRange{uint32(i), uint32(j - i)})
		i = j
	}
	return out
}

func TestBlockSetAgainstModel(t *testing.T) {
	g := gen{rand.New(rand.NewPCG(5, 6))}
	for i := range 2000 {
		var s BlockSet
		var m model
		// Sets from sparse to full, so words of all-ones and all-zeros occur.
		density := g.r.Float64()
		for b := uint32(0); b < MaxBlocks; b++ {
			if g.r.Float64() < density {
				s.Set(b)
				m[b] = true
			}
		}
		if got, want := s.Ranges(), m.ranges(); !reflect.DeepEqual(got, want) {
			t.Fatalf("#%d Ranges %v, want %v", i, got, want)
		}
		n := 0
		for b := range uint32(MaxBlocks) {
			if s.Has(b) != m[b] {
				t.Fatalf("#%d Has(%d) = %v", i, b, s.Has(b))
			}
			if m[b] {
				n++
			}
			want := uint32(0)
			for c := b + 1; c < MaxBlocks; c++ {
				if m[c] {
					want = c
					break
				}
			}
			if got := s.NextAfter(b); got != want {
				t.Fatalf("#%d NextAfter(%d) = %d, want %d", i, b, got, want)
			}
		}
		if s.Len() != n {
			t.Fatalf("#%d Len %d, want %d", i, s.Len(), n)
		}
		req := g.blockRanges(1)
		var asked, both model
		asked.add(req)
		for b := range both {
			both[b] = asked[b] && m[b]
		}
		if got, want := s.Intersect(req), both.ranges(); !reflect.DeepEqual(got, want) {
			t.Fatalf("#%d Intersect(%v) = %v, want %v", i, req, got, want)
		}
		if got, want := NormalizeRanges(req), asked.ranges(); !reflect.DeepEqual(got, want) {
			t.Fatalf("#%d NormalizeRanges(%v) = %v, want %v", i, req, got, want)
		}
	}
}

func TestBlockSetEdges(t *testing.T) {
	var s BlockSet
	s.Set(512)
	s.Set(1 << 31)
	s.SetRange(BlockRange{510, 0xffffffff})
	if got := s.Ranges(); !reflect.DeepEqual(got, []BlockRange{{510, 2}}) {
		t.Errorf("out-of-range indexes leaked in: %v", got)
	}
	if s.Has(512) || s.NextAfter(511) != 0 || s.NextAfter(0xffffffff) != 0 || s.NextAfter(509) != 510 {
		t.Errorf("edges wrong: %v", s.Ranges())
	}
	s.Clear(510)
	s.Clear(4000)
	if got := s.Ranges(); !reflect.DeepEqual(got, []BlockRange{{511, 1}}) {
		t.Errorf("after Clear: %v", got)
	}
	var full BlockSet
	full.SetRange(BlockRange{0, 512})
	if got := full.Ranges(); !reflect.DeepEqual(got, []BlockRange{{0, 512}}) || full.Len() != 512 {
		t.Errorf("full set: %v", got)
	}
	if (&BlockSet{}).Ranges() != nil {
		t.Errorf("empty set must give nil ranges")
	}
}

func TestNormalizeRanges(t *testing.T) {
	tests := []struct {
		in, want []BlockRange
	}{
		{nil, nil},
		{[]BlockRange{{5, 0}}, nil},
		{[]BlockRange{{4, 2}, {0, 2}}, []BlockRange{{0, 2}, {4, 2}}},
		{[]BlockRange{{2, 2}, {0, 2}}, []BlockRange{{0, 4}}},                                 // adjacent
		{[]BlockRange{{0, 10}, {3, 2}, {9, 5}}, []BlockRange{{0, 14}}},                       // contained, overlapping
		{[]BlockRange{{0xfffffff0, 0x10}, {0, 1}}, []BlockRange{{0, 1}, {0xfffffff0, 0x10}}}, // segment ranges near 2^32
	}
	for _, tt := range tests {
		in := append([]BlockRange(nil), tt.in...)
		if got := NormalizeRanges(tt.in); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("NormalizeRanges(%v) = %v, want %v", tt.in, got, tt.want)
		}
		if !reflect.DeepEqual(in, tt.in) {
			t.Errorf("NormalizeRanges modified its input")
		}
	}
}

func TestValidateBlockRanges(t *testing.T) {
	many := make([]BlockRange, 257)
	for i := range many {
		many[i] = BlockRange{uint32(i), 1}
	}
	tests := []struct {
		name string
		rs   []BlockRange
		ok   bool
	}{
		{"one block", []BlockRange{{0, 1}}, true},
		{"whole segment", []BlockRange{{0, 512}}, true},
		{"last block", []BlockRange{{511, 1}}, true},
		{"256 ranges", many[:256], true},
		{"unsorted overlapping (Windows accepts anything)", []BlockRange{{5, 3}, {0, 7}}, true},
		{"empty array", nil, false},
		{"257 ranges", many, false},
		{"Count 0", []BlockRange{{0, 0}}, false},
		{"Index 512", []BlockRange{{512, 1}}, false},
		{"Count past 512", []BlockRange{{500, 13}}, false},
		{"Count overflowing uint32", []BlockRange{{1, 0xffffffff}}, false},
	}
	for _, tt := range tests {
		err := ValidateBlockRanges(tt.rs)
		if (err == nil) != tt.ok || (err != nil && !errors.Is(err, ErrMalformed)) {
			t.Errorf("%s: %v", tt.name, err)
		}
	}
}

// TestServerReplies covers NextBlockIndex and the choice of block
// (protocols.md §3.5).
func TestServerReplies(t *testing.T) {
	seg := []byte("0123456789abcdef0123456789abcdef")
	var held BlockSet
	for _, b := range []uint32{0, 1, 5, 9, 200} {
		held.Set(b)
	}
	tests := []struct {
		name   string
		asked  []BlockRange
		ranges []BlockRange
		next   uint32
	}{
		{"all held", []BlockRange{{0, 2}}, []BlockRange{{0, 2}}, 5},
		{"partly held", []BlockRange{{0, 6}}, []BlockRange{{0, 2}, {5, 1}}, 9},
		{"none of them", []BlockRange{{2, 3}}, nil, 5},
		{"unsorted request", []BlockRange{{9, 1}, {0, 1}}, []BlockRange{{0, 1}, {9, 1}}, 200},
		{"nothing after", []BlockRange{{100, 412}}, []BlockRange{{200, 1}}, 0},
	}
	for _, tt := range tests {
		req := &GetBlkList{Crypto: CryptoAES128, SegmentID: seg, Ranges: tt.asked}
		got := NewBlkList(req, &held)
		want := &BlkList{Crypto: CryptoAES128, SegmentID: seg, Ranges: tt.ranges, NextBlockIndex: tt.next}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: %+v, want %+v", tt.name, got, want)
		}
		if !got.Answers(req) {
			t.Errorf("%s: reply does not answer its request", tt.name)
		}
	}
	if got := NewBlkList(&GetBlkList{SegmentID: seg, Ranges: []BlockRange{{0, 1}}}, nil); got.Ranges != nil || got.NextBlockIndex != 0 {
		t.Errorf("unknown segment: %+v", got)
	}

	getBlks := &GetBlks{SegmentID: seg, Ranges: []BlockRange{{9, 3}, {5, 1}}}
	index, ok := getBlks.FirstBlock()
	if !ok || index != 5 {
		t.Fatalf("FirstBlock = %d %v, want 5 (lowest requested)", index, ok)
	}
	iv := make([]byte, 16)
	blk := NewBlk(seg, index, &held, CryptoAES256, make([]byte, 32), iv)
	if blk.NextBlockIndex != 9 || !blk.Answers(getBlks) {
		t.Errorf("NewBlk: %v", blk)
	}
	if last := NewBlk(seg, 200, &held, CryptoAES256, make([]byte, 32), iv); last.NextBlockIndex != 0 {
		t.Errorf("last held block: next %d, want 0", last.NextBlockIndex)
	}
	nf := NotFoundBlk(getBlks)
	if nf.BlockIndex != 5 || nf.Crypto != CryptoNone || nf.Block != nil || nf.IV != nil || !nf.Answers(getBlks) {
		t.Errorf("NotFoundBlk: %v", nf)
	}

	req := &GetSegList{RequestID: requestID(3), SegmentIDs: [][]byte{[]byte("a"), []byte("b"), []byte("c"), []byte("d"), []byte("e")}}
	sl := NewSegList(req, func(id []byte) bool { return id[0] != 'c' })
	if want := []SegmentRange{{0, 2}, {3, 2}}; !reflect.DeepEqual(sl.Ranges, want) || !sl.Answers(req) {
		t.Errorf("NewSegList ranges %v, want %v", sl.Ranges, want)
	}
}

// TestClientMatching: a reply for another segment, block or request is
// discarded (protocols.md §3.7).
func TestClientMatching(t *testing.T) {
	seg, other := []byte("segment-a"), []byte("segment-b")
	req := &GetBlks{SegmentID: seg, Ranges: []BlockRange{{7, 1}}}
	for _, tt := range []struct {
		name string
		blk  Blk
		ok   bool
	}{
		{"match", Blk{SegmentID: seg, BlockIndex: 7}, true},
		{"other block", Blk{SegmentID: seg, BlockIndex: 8}, false},
		{"other segment", Blk{SegmentID: other, BlockIndex: 7}, false},
	} {
		if got := tt.blk.Answers(req); got != tt.ok {
			t.Errorf("Blk %s: %v", tt.name, got)
		}
	}
	if (&Blk{}).Answers(&GetBlks{}) {
		t.Errorf("a request without ranges matches nothing")
	}

	listReq := &GetBlkList{SegmentID: seg, Ranges: []BlockRange{{0, 4}, {10, 2}}}
	for _, tt := range []struct {
		name   string
		ranges []BlockRange
		seg    []byte
		ok     bool
	}{
		{"empty", nil, seg, true},
		{"overlapping", []BlockRange{{2, 4}, {11, 1}}, seg, true},
		{"outside", []BlockRange{{5, 4}}, seg, false},
		{"other segment", nil, other, false},
	} {
		if got := (&BlkList{SegmentID: tt.seg, Ranges: tt.ranges}).Answers(listReq); got != tt.ok {
			t.Errorf("BlkList %s: %v", tt.name, got)
		}
	}

	segReq := &GetSegList{RequestID: requestID(1), SegmentIDs: [][]byte{seg, other}}
	for _, tt := range []struct {
		name   string
		id     [16]byte
		ranges []SegmentRange
		ok     bool
	}{
		{"match", requestID(1), []SegmentRange{{0, 2}}, true},
		{"other request", requestID(2), nil, false},
		{"index past the list", requestID(1), []SegmentRange{{1, 2}}, false},
	} {
		if got := (&SegList{RequestID: tt.id, Ranges: tt.ranges}).Answers(segReq); got != tt.ok {
			t.Errorf("SegList %s: %v", tt.name, got)
		}
	}
}
