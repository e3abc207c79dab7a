package pccrc

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"testing"

	"github.com/outpost-appliance/outpost/peerdist/vectors"
)

// Each test here settles one row of protocols.md §9 ("spec errors") the way
// the digest decides it.

// §9 row 1: Kp is HMAC(Ks, HoD), not Hash(HoD + ServerSecret).
func TestSpecErrata1_SegmentSecretIsHMAC(t *testing.T) {
	exp := loadIIS(t)
	ci, err := Parse(vectors.Read(t, "peerdist-vectors", "ipxe", "iis85_ci_v1.bin"))
	if err != nil {
		t.Fatal(err)
	}
	hod := ci.Segments[0].HashOfData
	ks := SHA256.ServerKey(vectors.Hex(t, exp.ServerSecretKey))
	if got := SHA256.SegmentSecret(ks, hod); !bytes.Equal(got, ci.Segments[0].Secret) {
		t.Errorf("HMAC(Ks, HoD) = %x, want the IIS Kp %x", got, ci.Segments[0].Secret)
	}
	wrong := sha256.Sum256(append(append([]byte{}, hod...), ks...))
	if hexOf(wrong[:]) != exp.CounterExamples.KpConcat {
		t.Fatalf("counter-example vector not reproduced")
	}
	if bytes.Equal(wrong[:], ci.Segments[0].Secret) {
		t.Error("the spec's field-text formula matched; the vector is wrong")
	}
}

// §9 row 2: C2 is UTF-16LE "MS_P2P_CACHING" plus a 2-byte NUL, not ASCII.
func TestSpecErrata2_C2IsUTF16LE(t *testing.T) {
	exp := loadIIS(t)
	ci, err := Parse(vectors.Read(t, "peerdist-vectors", "ipxe", "iis85_ci_v1.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if len(C2()) != 30 {
		t.Errorf("C2 is %d bytes, want 30", len(C2()))
	}
	seg := ci.Segments[0]
	ascii := SHA256.HMAC(seg.Secret, seg.HashOfData, []byte("MS_P2P_CACHING\x00"))
	if hexOf(ascii) != exp.CounterExamples.HoHoDkASCII {
		t.Fatalf("counter-example vector not reproduced")
	}
	if hexOf(ci.ID(0)) != exp.V1.Segments[0].HoHoDk {
		t.Errorf("segment ID with UTF-16LE C2 = %x", ci.ID(0))
	}
}

// §9 row 3: V2 bHashAlgo is 0x04 (truncated SHA-512); the spec example's
// 0x01 is rejected.
func TestSpecErrata3_V2HashAlgoIs04(t *testing.T) {
	raw := bytes.Clone(vectors.Read(t, "peerdist-vectors", "ipxe", "iis85_ci_v2.bin"))
	if raw[2] != 0x04 {
		t.Fatalf("IIS V2 bHashAlgo = %#x", raw[2])
	}
	raw[2] = 0x01
	if _, err := Parse(raw); !errors.Is(err, ErrMalformed) {
		t.Errorf("bHashAlgo 0x01 accepted: %v", err)
	}
}

// §9 row 4: dwReadBytesInLastSegment 0 means "to the end of the last
// segment" (IIS), and an explicit count (the spec's 128000) is also read.
func TestSpecErrata4_ReadBytesInLastSegment(t *testing.T) {
	ci := testInfoV1(t, 3*SegmentSizeV1/2)
	for _, tc := range []struct {
		readBytes uint32
		wantEnd   uint64
	}{
		{0, 3 * SegmentSizeV1 / 2},
		{128000, SegmentSizeV1 + 128000},
	} {
		ci.ReadBytesInLastSegment = tc.readBytes
		if _, end := ci.Range(); end != tc.wantEnd {
			t.Errorf("dwReadBytesInLastSegment %d: end %d, want %d", tc.readBytes, end, tc.wantEnd)
		}
	}
}

// §9 row 5: a segment's block-hash list starts at block 0 and runs to the
// last block touching the range, even when the range starts later.
func TestSpecErrata5_BlockHashesStartAtBlockZero(t *testing.T) {
	ci := testInfoV1(t, 5*BlockSize)
	r, err := ci.Restrict(2*BlockSize+10, 100) // inside block 2 only
	if err != nil {
		t.Fatal(err)
	}
	if n := len(r.Segments[0].BlockHashes); n != 3 {
		t.Errorf("cBlocks = %d, want 3 (blocks 0..2)", n)
	}
	roundTrip(t, r)
}

// §9 row 6: the range end of a multi-segment V1 range is the last
// segment's offset plus dwReadBytesInLastSegment; dwOffsetInFirstSegment is
// not added to it.
func TestSpecErrata6_RangeEndIgnoresFirstOffset(t *testing.T) {
	ci := testInfoV1(t, 2*SegmentSizeV1)
	ci.OffsetInFirstSegment = 100
	ci.ReadBytesInLastSegment = 1000
	start, end := ci.Range()
	if start != 100 || end != SegmentSizeV1+1000 {
		t.Errorf("range [%d, %d), want [100, %d)", start, end, SegmentSizeV1+1000)
	}
}

// §9 row 7: the spec's examples carry made-up hashes, so decoding never
// judges hash values; verification is a separate, explicit step.
func TestSpecErrata7_DecodingDoesNotJudgeHashes(t *testing.T) {
	ci := testInfoV1(t, 2*BlockSize)
	for i := range ci.Segments[0].BlockHashes {
		ci.Segments[0].BlockHashes[i] = bytes.Repeat([]byte{0x11}, 32) // "no more secrets"
	}
	raw, err := ci.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	got, err := Parse(raw)
	if err != nil {
		t.Fatalf("made-up hashes rejected at decode: %v", err)
	}
	if err := got.Segments[0].CheckHashOfData(SHA256); !errors.Is(err, ErrMismatch) {
		t.Errorf("CheckHashOfData = %v, want a mismatch", err)
	}
}

// §9 row 8: ullLengthOfRange is a length (iPXE reads it as an end offset,
// which only agrees when the range starts at 0).
func TestSpecErrata8_V2LengthOfRangeIsALength(t *testing.T) {
	ci, err := Parse(vectors.Read(t, "peerdist-vectors", "ipxe", "iis85_ci_v2.bin"))
	if err != nil {
		t.Fatal(err)
	}
	r, err := ci.Restrict(39390+10, 100)
	if err != nil {
		t.Fatal(err)
	}
	if r.StartInContent != 39390 || r.IndexOfFirstSegment != 1 || r.OffsetInFirstSegment != 10 || r.LengthOfRange != 100 {
		t.Fatalf("restricted header %+v", r)
	}
	if start, end := roundTrip(t, r).Range(); start != 39400 || end != 39500 {
		t.Errorf("range [%d, %d), want [39400, 39500)", start, end)
	}
}
