package pccrc

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"testing"

	"github.com/outpost-appliance/outpost/peerdist/vectors"
)

// iisExpected mirrors peerdist-vectors/ipxe/iis85_expected.json.
type iisExpected struct {
	ServerSecretKey string `json:"server_secret_key"`
	V1              struct {
		Length   int       `json:"length"`
		KsHex    string    `json:"Ks=SHA256(key)"`
		Range    [2]uint64 `json:"content_range"`
		Segments []struct {
			Offset    uint64 `json:"ullOffsetInContent"`
			CbSegment uint32 `json:"cbSegment"`
			HoD       string `json:"hod"`
			Kp        string `json:"kp"`
			HoHoDk    string `json:"hohodk"`
			Blocks    []struct {
				Range [2]uint64 `json:"range"`
				Hash  string    `json:"hash"`
			} `json:"blocks"`
		} `json:"segments"`
	} `json:"v1"`
	V2 struct {
		Length   int       `json:"length"`
		KsHex    string    `json:"Ks=SHA512(key)[:32]"`
		Range    [2]uint64 `json:"content_range"`
		Segments []struct {
			Range     [2]uint64 `json:"range"`
			CbSegment uint32    `json:"cbSegment"`
			HoD       string    `json:"hod"`
			Kp        string    `json:"kp"`
			HoHoDk    string    `json:"hohodk"`
		} `json:"segments"`
	} `json:"v2"`
	CounterExamples struct {
		HoHoDkASCII string `json:"v1_hohodk_if_C2_were_ascii_with_nul"`
		KpConcat    string `json:"v1_kp_if_it_were_SHA256(hod||Ks)"`
	} `json:"counter_examples"`
}

func loadIIS(t *testing.T) iisExpected {
	var exp iisExpected
	vectors.JSON(t, &exp, "peerdist-vectors", "ipxe", "iis85_expected.json")
	return exp
}

func hexOf(b []byte) string { return hex.EncodeToString(b) }

// The real IIS 8.5 content information (iPXE's test data) decodes to the
// values iPXE and hashlib derived, and re-encodes byte-exact.
func TestIISContentInfoV1(t *testing.T) {
	exp := loadIIS(t)
	raw := vectors.Read(t, "peerdist-vectors", "ipxe", "iis85_ci_v1.bin")
	if !bytes.Equal(raw, vectors.HexFile(t, "peerdist-vectors", "ipxe", "iis85_ci_v1.hex")) {
		t.Fatal(".bin and .hex differ")
	}
	ci, err := Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if ci.Version != V1 || ci.Algo != SHA256 || ci.OffsetInFirstSegment != 0 || ci.ReadBytesInLastSegment != 0 || len(ci.Segments) != 1 {
		t.Fatalf("header: %+v", ci)
	}
	if start, end := ci.Range(); start != exp.V1.Range[0] || end != exp.V1.Range[1] {
		t.Errorf("range [%d, %d), want %v", start, end, exp.V1.Range)
	}
	secret := vectors.Hex(t, exp.ServerSecretKey)
	if !bytes.Equal(secret, vectors.Read(t, "peerdist-vectors", "ipxe", "server_secret_key.bin")) ||
		!bytes.Equal(secret, vectors.HexFile(t, "peerdist-vectors", "ipxe", "server_secret_key.hex")) {
		t.Fatal("server_secret_key.bin/.hex differ from iis85_expected.json")
	}
	if got := hexOf(SHA256.ServerKey(secret)); got != exp.V1.KsHex {
		t.Errorf("Ks = %s, want %s", got, exp.V1.KsHex)
	}
	want := exp.V1.Segments[0]
	seg := ci.Segments[0]
	if seg.Offset != want.Offset || seg.Size != want.CbSegment || hexOf(seg.HashOfData) != want.HoD || hexOf(seg.Secret) != want.Kp {
		t.Errorf("segment: got offset %d size %d HoD %x Kp %x", seg.Offset, seg.Size, seg.HashOfData, seg.Secret)
	}
	if len(seg.BlockHashes) != len(want.Blocks) {
		t.Fatalf("%d block hashes, want %d", len(seg.BlockHashes), len(want.Blocks))
	}
	for i, b := range want.Blocks {
		if hexOf(seg.BlockHashes[i]) != b.Hash {
			t.Errorf("block %d hash %x, want %s", i, seg.BlockHashes[i], b.Hash)
		}
		off, n := BlockSpan(seg.Size, i)
		if uint64(off) != b.Range[0] || uint64(off+n) != b.Range[1] {
			t.Errorf("block %d span [%d, %d), want %v", i, off, off+n, b.Range)
		}
	}
	if got := hexOf(ci.ID(0)); got != want.HoHoDk {
		t.Errorf("segment ID %s, want %s", got, want.HoHoDk)
	}
	if err := seg.CheckHashOfData(SHA256); err != nil {
		t.Error(err)
	}
	if err := ci.CheckSecrets(secret); err != nil {
		t.Error(err)
	}
	if err := ci.CheckSecrets([]byte("another secret")); err == nil {
		t.Error("CheckSecrets accepted the wrong server secret")
	}
	assertMarshal(t, ci, raw)
}

func TestIISContentInfoV2(t *testing.T) {
	exp := loadIIS(t)
	raw := vectors.Read(t, "peerdist-vectors", "ipxe", "iis85_ci_v2.bin")
	if !bytes.Equal(raw, vectors.HexFile(t, "peerdist-vectors", "ipxe", "iis85_ci_v2.hex")) {
		t.Fatal(".bin and .hex differ")
	}
	ci, err := Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if ci.Version != V2 || ci.Algo != TruncatedSHA512 || ci.StartInContent != 0 || ci.IndexOfFirstSegment != 0 ||
		ci.OffsetInFirstSegment != 0 || ci.LengthOfRange != 0 || ci.ChunkSegments != nil || len(ci.Segments) != 2 {
		t.Fatalf("header: %+v", ci)
	}
	if start, end := ci.Range(); start != exp.V2.Range[0] || end != exp.V2.Range[1] {
		t.Errorf("range [%d, %d), want %v", start, end, exp.V2.Range)
	}
	secret := vectors.Hex(t, exp.ServerSecretKey)
	if got := hexOf(TruncatedSHA512.ServerKey(secret)); got != exp.V2.KsHex {
		t.Errorf("Ks = %s, want %s", got, exp.V2.KsHex)
	}
	for i, want := range exp.V2.Segments {
		seg := ci.Segments[i]
		if seg.Offset != want.Range[0] || seg.Offset+uint64(seg.Size) != want.Range[1] || seg.Size != want.CbSegment {
			t.Errorf("segment %d: offset %d size %d, want %v", i, seg.Offset, seg.Size, want.Range)
		}
		if hexOf(seg.HashOfData) != want.HoD || hexOf(seg.Secret) != want.Kp {
			t.Errorf("segment %d: HoD %x Kp %x", i, seg.HashOfData, seg.Secret)
		}
		if got := hexOf(ci.ID(i)); got != want.HoHoDk {
			t.Errorf("segment %d ID %s, want %s", i, got, want.HoHoDk)
		}
	}
	if err := ci.CheckSecrets(secret); err != nil {
		t.Error(err)
	}
	assertMarshal(t, ci, raw)
}

func assertMarshal(t *testing.T, ci *Info, want []byte) {
	t.Helper()
	got, err := ci.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("re-encoding differs:\n got %x\nwant %x", got, want)
	}
}

// mstestSummary mirrors mstest-vectors/derived/summary.json.
type mstestSummary struct {
	ServerSecret string                `json:"server_secret_utf16le_hex"`
	C2           string                `json:"C2_hex"`
	Files        map[string]mstestFile `json:"-"`
}

type mstestFile struct {
	Size int64 `json:"size"`
	V1   struct {
		Ks       string `json:"Ks"`
		CILen    int    `json:"contentinfo_len"`
		CISHA256 string `json:"contentinfo_sha256"`
		Segments []mstestSegment
	} `json:"v1"`
	V2 *struct {
		Ks     string `json:"Ks"`
		Cb     uint32 `json:"cb"`
		HoD    string `json:"hod"`
		Kp     string `json:"kp"`
		HoHoDk string `json:"hohodk"`
	} `json:"v2_single_segment_assumption"`
}

type mstestSegment struct {
	Offset        uint64 `json:"offset"`
	Cb            uint32 `json:"cb"`
	HoD           string `json:"hod"`
	Kp            string `json:"kp"`
	HoHoDk        string `json:"hohodk"`
	CBlocks       int    `json:"cBlocks"`
	BlockHash0    string `json:"blockhash0"`
	BlockHashLast string `json:"blockhash_last"`
}

func loadMSTest(t *testing.T) mstestSummary {
	var s mstestSummary
	vectors.JSON(t, &s, "mstest-vectors", "derived", "summary.json")
	var files struct {
		SingleBlock      mstestFile `json:"SingleBlock.txt"`
		MultipleBlocks   mstestFile `json:"MultipleBlocks.txt"`
		MultipleSegments mstestFile `json:"MultipleSegments.txt"`
	}
	vectors.JSON(t, &files, "mstest-vectors", "derived", "summary.json")
	s.Files = map[string]mstestFile{
		"SingleBlock.txt":      files.SingleBlock,
		"MultipleBlocks.txt":   files.MultipleBlocks,
		"MultipleSegments.txt": files.MultipleSegments,
	}
	return s
}

func checkMSTestV1(t *testing.T, ci *Info, want mstestFile) {
	t.Helper()
	if len(ci.Segments) != len(want.V1.Segments) {
		t.Fatalf("%d segments, want %d", len(ci.Segments), len(want.V1.Segments))
	}
	for i, w := range want.V1.Segments {
		s := ci.Segments[i]
		if s.Offset != w.Offset || s.Size != w.Cb || len(s.BlockHashes) != w.CBlocks {
			t.Errorf("segment %d: offset %d size %d blocks %d", i, s.Offset, s.Size, len(s.BlockHashes))
			continue
		}
		if hexOf(s.HashOfData) != w.HoD || hexOf(s.Secret) != w.Kp || hexOf(ci.ID(i)) != w.HoHoDk {
			t.Errorf("segment %d: HoD %x Kp %x ID %x", i, s.HashOfData, s.Secret, ci.ID(i))
		}
		if hexOf(s.BlockHashes[0]) != w.BlockHash0 || hexOf(s.BlockHashes[len(s.BlockHashes)-1]) != w.BlockHashLast {
			t.Errorf("segment %d: first/last block hash", i)
		}
	}
}

// The MS test suite's content (all-zero files, secret "server secret")
// decodes to summary.json's values, and generating content information for
// the same bytes reproduces the vector files byte for byte.
func TestMSTestContentInfo(t *testing.T) {
	sum := loadMSTest(t)
	secret := vectors.Hex(t, sum.ServerSecret)
	if hexOf(C2()) != sum.C2 {
		t.Errorf("C2 = %x, want %s", C2(), sum.C2)
	}
	for _, tc := range []struct{ name, v1, v2 string }{
		{"SingleBlock.txt", "v1_SingleBlock_contentinfo.bin", "v2_SingleBlock_contentinfo_1seg.bin"},
		{"MultipleBlocks.txt", "v1_MultipleBlocks_contentinfo.bin", "v2_MultipleBlocks_contentinfo_1seg.bin"},
		{"MultipleSegments.txt", "v1_MultipleSegments_contentinfo.bin", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := sum.Files[tc.name]
			raw := vectors.Read(t, "mstest-vectors", "derived", tc.v1)
			if len(raw) != want.V1.CILen || hexOf(sha256Sum(raw)) != want.V1.CISHA256 {
				t.Fatalf("vector file does not match summary.json")
			}
			ci, err := Parse(raw)
			if err != nil {
				t.Fatal(err)
			}
			if hexOf(SHA256.ServerKey(secret)) != want.V1.Ks {
				t.Errorf("Ks mismatch")
			}
			checkMSTestV1(t, ci, want)
			if start, end := ci.Range(); start != 0 || end != uint64(want.Size) {
				t.Errorf("range [%d, %d), want [0, %d)", start, end, want.Size)
			}
			assertMarshal(t, ci, raw)

			gen, err := GenerateV1(context.Background(), bytes.NewReader(make([]byte, want.Size)), SHA256, secret)
			if err != nil {
				t.Fatal(err)
			}
			assertMarshal(t, gen, raw)

			if tc.v2 == "" {
				return
			}
			raw2 := vectors.Read(t, "mstest-vectors", "derived", tc.v2)
			ci2, err := Parse(raw2)
			if err != nil {
				t.Fatal(err)
			}
			w2 := want.V2
			if hexOf(TruncatedSHA512.ServerKey(secret)) != w2.Ks {
				t.Errorf("V2 Ks mismatch")
			}
			s := ci2.Segments[0]
			if len(ci2.Segments) != 1 || s.Size != w2.Cb || hexOf(s.HashOfData) != w2.HoD || hexOf(s.Secret) != w2.Kp || hexOf(ci2.ID(0)) != w2.HoHoDk {
				t.Errorf("V2 segment: %+v", s)
			}
			// HoD of V2 is the truncated SHA-512 of the segment bytes.
			if got := hexOf(TruncatedSHA512.Sum(make([]byte, w2.Cb))); got != w2.HoD {
				t.Errorf("V2 HoD of the data = %s, want %s", got, w2.HoD)
			}
			assertMarshal(t, ci2, raw2)
		})
	}
}

func sha256Sum(b []byte) []byte { h := sha256.Sum256(b); return h[:] }

func TestC2MatchesSpecVector(t *testing.T) {
	want := vectors.HexFile(t, "peerdist-vectors", "spec", "C2_MS_P2P_CACHING_utf16le.hex")
	if !bytes.Equal(C2(), want) {
		t.Errorf("C2 = %x, want %x", C2(), want)
	}
}
