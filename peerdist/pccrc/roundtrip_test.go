package pccrc

import (
	"bytes"
	"context"
	"errors"
	"testing"
)

var roundTripSizes = []int{0, 1, 65535, 65536, 65537, 200_000, SegmentSizeV1 - 1, SegmentSizeV1, SegmentSizeV1 + 1}

// generate → marshal → parse → equal, for both versions and the sizes the
// boundaries make interesting; the generated info also verifies its data
// and covers exactly the content.
func TestGenerateRoundTrip(t *testing.T) {
	ctx := context.Background()
	for _, size := range roundTripSizes {
		data := contentBytes(size, byte(size))
		for _, version := range []Version{V1, V2} {
			var ci *Info
			var err error
			if version == V1 {
				ci, err = GenerateV1(ctx, bytes.NewReader(data), SHA256, []byte("secret"))
			} else {
				ci, err = GenerateV2(ctx, bytes.NewReader(data), []byte("secret"))
			}
			if err != nil {
				t.Fatalf("v%d size %d: %v", version, size, err)
			}
			if start, end := ci.Range(); start != 0 || end != uint64(size) {
				t.Errorf("v%d size %d: range [%d, %d)", version, size, start, end)
			}
			roundTrip(t, ci)
			if err := ci.Verify(ctx, bytes.NewReader(data)); err != nil {
				t.Errorf("v%d size %d: %v", version, size, err)
			}
			if err := ci.CheckSecrets([]byte("secret")); err != nil {
				t.Errorf("v%d size %d: %v", version, size, err)
			}
		}
	}
}

func TestGenerateV1Algorithms(t *testing.T) {
	data := contentBytes(3*BlockSize+5, 9)
	for _, algo := range []HashAlgo{SHA256, SHA384, SHA512} {
		ci, err := GenerateV1(context.Background(), bytes.NewReader(data), algo, []byte("k"))
		if err != nil {
			t.Fatal(err)
		}
		got := roundTrip(t, ci)
		if got.Algo != algo || len(got.Segments[0].HashOfData) != algo.Size() {
			t.Errorf("%v: decoded %v", algo, got.Algo)
		}
		if err := ci.Verify(context.Background(), bytes.NewReader(data)); err != nil {
			t.Errorf("%v: %v", algo, err)
		}
	}
	if _, err := GenerateV1(context.Background(), bytes.NewReader(data), TruncatedSHA512, nil); err == nil {
		t.Error("V1 with truncated SHA-512 accepted")
	}
}

// Verify names the first bad segment and block.
func TestVerifyNamesFirstBadBlock(t *testing.T) {
	ctx := context.Background()
	size := SegmentSizeV1 + 3*BlockSize
	data := contentBytes(size, 3)
	ci1, err := GenerateV1(ctx, bytes.NewReader(data), SHA256, nil)
	if err != nil {
		t.Fatal(err)
	}
	ci2, err := GenerateV2(ctx, bytes.NewReader(data), nil)
	if err != nil {
		t.Fatal(err)
	}
	flipAt := func(off int) []byte {
		bad := bytes.Clone(data)
		bad[off] ^= 1
		return bad
	}
	for _, tc := range []struct {
		name      string
		ci        *Info
		data      []byte
		seg, blk  int
		wantShort bool
	}{
		{"v1 first block", ci1, flipAt(0), 0, 0, false},
		{"v1 second segment block 2", ci1, flipAt(SegmentSizeV1 + 2*BlockSize + 7), 1, 2, false},
		{"v1 truncated", ci1, data[:size-1], 1, 2, true},
		{"v2 segment holding byte 1e6", ci2, flipAt(1_000_000), ci2.segmentAt(1_000_000), -1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.ci.Verify(ctx, bytes.NewReader(tc.data))
			var ve *VerifyError
			if !errors.As(err, &ve) {
				t.Fatalf("Verify = %v, want a VerifyError", err)
			}
			if ve.Segment != tc.seg || ve.Block != tc.blk {
				t.Errorf("failure at segment %d block %d, want %d/%d (%v)", ve.Segment, ve.Block, tc.seg, tc.blk, err)
			}
			if short := bytes.Contains([]byte(ve.Reason), []byte("ends early")); short != tc.wantShort {
				t.Errorf("reason %q", ve.Reason)
			}
		})
	}
}

func TestRestrict(t *testing.T) {
	size := 2*SegmentSizeV1 + 100_000
	data := contentBytes(size, 4)
	v1, err := GenerateV1(context.Background(), bytes.NewReader(data), SHA256, nil)
	if err != nil {
		t.Fatal(err)
	}
	v2, err := GenerateV2(context.Background(), bytes.NewReader(bytes.Clone(data[:1_000_000])), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name              string
		ci                *Info
		start, length     uint64
		segs, lastBlocks  int
		offsetFirst, read uint32
	}{
		{"v1 whole", v1, 0, uint64(size), 3, 2, 0, 100_000},
		{"v1 one byte", v1, 5, 1, 1, 1, 5, 1},
		{"v1 inside block 7", v1, 7*BlockSize + 1, 10, 1, 8, 7*BlockSize + 1, 10},
		{"v1 across segments", v1, SegmentSizeV1 - 10, 20, 2, 1, SegmentSizeV1 - 10, 10},
		{"v1 last segment", v1, 2 * SegmentSizeV1, 100_000, 1, 2, 0, 100_000},
		{"v2 first byte", v2, 0, 1, 1, 0, 0, 0},
		{"v2 tail", v2, 999_000, 1000, 1, 0, uint32(999_000 - v2.Segments[v2.segmentAt(999_000)].Offset), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := tc.ci.Restrict(tc.start, tc.length)
			if err != nil {
				t.Fatal(err)
			}
			if len(r.Segments) != tc.segs || r.OffsetInFirstSegment != tc.offsetFirst || r.ReadBytesInLastSegment != tc.read {
				t.Errorf("segments %d offset %d read %d", len(r.Segments), r.OffsetInFirstSegment, r.ReadBytesInLastSegment)
			}
			if r.Version == V1 && len(r.Segments[len(r.Segments)-1].BlockHashes) != tc.lastBlocks {
				t.Errorf("last segment lists %d blocks, want %d", len(r.Segments[len(r.Segments)-1].BlockHashes), tc.lastBlocks)
			}
			got := roundTrip(t, r)
			if start, end := got.Range(); start != tc.start || end != tc.start+tc.length {
				t.Errorf("range [%d, %d), want [%d, %d)", start, end, tc.start, tc.start+tc.length)
			}
			if err := got.Verify(context.Background(), bytes.NewReader(data)); err != nil {
				t.Errorf("restricted info does not verify: %v", err)
			}
		})
	}
	for _, bad := range [][2]uint64{{0, 0}, {uint64(size), 1}, {1, uint64(size)}} {
		if _, err := v1.Restrict(bad[0], bad[1]); err == nil {
			t.Errorf("Restrict(%d, %d) accepted", bad[0], bad[1])
		}
	}
}

// Content-defined V2 segments: all within bounds, deterministic, and an
// insertion near the start leaves the later segment IDs unchanged.
func TestV2SegmentsAreContentDefined(t *testing.T) {
	ctx := context.Background()
	data := contentBytes(8<<20, 5)
	ci, err := GenerateV2(ctx, bytes.NewReader(data), nil)
	if err != nil {
		t.Fatal(err)
	}
	var total uint64
	for i, s := range ci.Segments {
		if s.Size == 0 || s.Size > MaxSegmentSizeV2 {
			t.Fatalf("segment %d size %d", i, s.Size)
		}
		if i < len(ci.Segments)-1 && s.Size < minChunk {
			t.Errorf("segment %d size %d below the minimum", i, s.Size)
		}
		total += uint64(s.Size)
	}
	if total != uint64(len(data)) {
		t.Fatalf("segments cover %d bytes of %d", total, len(data))
	}
	if avg := total / uint64(len(ci.Segments)); avg < 48<<10 || avg > 96<<10 {
		t.Errorf("average segment %d bytes, expected near 64 KiB", avg)
	}
	shifted := append(append(bytes.Clone(data[:1000]), []byte("inserted")...), data[1000:]...)
	ci2, err := GenerateV2(ctx, bytes.NewReader(shifted), nil)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for i := range ci.Segments {
		ids[string(ci.ID(i))] = true
	}
	shared := 0
	for i := range ci2.Segments {
		if ids[string(ci2.ID(i))] {
			shared++
		}
	}
	if shared < len(ci.Segments)-3 {
		t.Errorf("only %d of %d segments survived an 8-byte insertion", shared, len(ci.Segments))
	}
}

func TestGenerateHonoursContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := GenerateV2(ctx, newTestContent(10<<20, 1), nil); !errors.Is(err, context.Canceled) {
		t.Errorf("GenerateV2 on a cancelled context: %v", err)
	}
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("disk on fire") }

func TestGenerateReportsReadErrors(t *testing.T) {
	if _, err := GenerateV1(context.Background(), failingReader{}, SHA256, nil); err == nil || !bytes.Contains([]byte(err.Error()), []byte("disk on fire")) {
		t.Errorf("GenerateV1 = %v", err)
	}
}
