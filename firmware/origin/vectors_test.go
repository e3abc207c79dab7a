package origin

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"

	"github.com/outpost-appliance/outpost/peerdist/pccrc"
	"github.com/outpost-appliance/outpost/peerdist/vectors"
)

// mstestFile is the part of mstest-vectors/derived/summary.json used here.
type mstestFile struct {
	Size int `json:"size"`
	V1   struct {
		Len      int    `json:"contentinfo_len"`
		SHA256   string `json:"contentinfo_sha256"`
		Segments []struct {
			Offset    uint64 `json:"offset"`
			Size      uint32 `json:"cb"`
			HoD       string `json:"hod"`
			Kp        string `json:"kp"`
			HoHoDk    string `json:"hohodk"`
			Blocks    int    `json:"cBlocks"`
			Block0    string `json:"blockhash0"`
			BlockLast string `json:"blockhash_last"`
		} `json:"segments"`
	} `json:"v1"`
	V2 struct {
		Size   uint32 `json:"cb"`
		HoD    string `json:"hod"`
		Kp     string `json:"kp"`
		HoHoDk string `json:"hohodk"`
	} `json:"v2_single_segment_assumption"`
}

// Served with the conformance suite's secret ("server secret") and its
// all-zero test files, the origin's content information carries exactly
// the segment hashes, secrets and IDs derived in summary.json. The wire
// form differs only in dwReadBytesInLastSegment, which the origin sends as
// 0 as IIS does (protocols.md §9 row 4).
func TestConformanceSuiteContentInformation(t *testing.T) {
	var doc struct {
		SingleBlock      mstestFile `json:"SingleBlock.txt"`
		MultipleBlocks   mstestFile `json:"MultipleBlocks.txt"`
		MultipleSegments mstestFile `json:"MultipleSegments.txt"`
	}
	vectors.JSON(t, &doc, "mstest-vectors", "derived", "summary.json")
	sum := map[string]mstestFile{"SingleBlock.txt": doc.SingleBlock, "MultipleBlocks.txt": doc.MultipleBlocks, "MultipleSegments.txt": doc.MultipleSegments}
	fx := newFixture(t, func(o *Options) { o.Secret = pccrc.PassphraseSecret("server secret") })
	if got, _ := hex.DecodeString("7300650072007600650072002000730065006300720065007400"); string(got) != string(fx.opts.Secret) {
		t.Fatalf("pccrc.PassphraseSecret(\"server secret\") = %x", fx.opts.Secret)
	}
	for _, name := range []string{"SingleBlock.txt", "MultipleBlocks.txt", "MultipleSegments.txt"} {
		t.Run(name, func(t *testing.T) {
			want := sum[name]
			if want.Size == 0 {
				t.Fatalf("%s not in summary.json", name)
			}
			if testing.Short() && want.Size > 1<<20 {
				t.Skip("hashes 40 MiB")
			}
			fx.put(t, name, make([]byte, want.Size))
			fx.waitHashed(t, name, pccrc.V1)
			resp, body := fx.get(t, "GET", "/"+name, win7...)
			if resp.Header.Get("Content-Encoding") != "peerdist" {
				t.Fatal("no content information")
			}
			ci := parseCI(t, body)
			if len(ci.Segments) != len(want.V1.Segments) {
				t.Fatalf("%d segments, want %d", len(ci.Segments), len(want.V1.Segments))
			}
			for i, w := range want.V1.Segments {
				s := ci.Segments[i]
				got := []string{hex.EncodeToString(s.HashOfData), hex.EncodeToString(s.Secret), hex.EncodeToString(ci.ID(i)),
					hex.EncodeToString(s.BlockHashes[0]), hex.EncodeToString(s.BlockHashes[len(s.BlockHashes)-1])}
				exp := []string{w.HoD, w.Kp, w.HoHoDk, w.Block0, w.BlockLast}
				for j := range got {
					if got[j] != exp[j] {
						t.Errorf("segment %d field %d: %s, want %s", i, j, got[j], exp[j])
					}
				}
				if s.Offset != w.Offset || s.Size != w.Size || len(s.BlockHashes) != w.Blocks {
					t.Errorf("segment %d: offset %d size %d blocks %d", i, s.Offset, s.Size, len(s.BlockHashes))
				}
			}
			if ci.ReadBytesInLastSegment != 0 {
				t.Errorf("dwReadBytesInLastSegment %d, want 0", ci.ReadBytesInLastSegment)
			}
			ci.ReadBytesInLastSegment = ci.Segments[len(ci.Segments)-1].Size
			raw, _ := ci.MarshalBinary()
			if digest := sha256.Sum256(raw); len(raw) != want.V1.Len || hex.EncodeToString(digest[:]) != want.V1.SHA256 {
				t.Errorf("with the suite's dwReadBytesInLastSegment the wire form differs from v1_%s_contentinfo.bin", name)
			}
			if want.Size > 32<<10 {
				return // V2 segmentation is content-defined; the suite assumes one segment
			}
			fx.waitHashed(t, name, pccrc.V2)
			_, body = fx.get(t, "GET", "/"+name, win8...)
			ci2 := parseCI(t, body)
			if len(ci2.Segments) != 1 || hex.EncodeToString(ci2.Segments[0].HashOfData) != want.V2.HoD ||
				hex.EncodeToString(ci2.Segments[0].Secret) != want.V2.Kp || hex.EncodeToString(ci2.ID(0)) != want.V2.HoHoDk {
				t.Errorf("V2 content information differs from summary.json")
			}
		})
	}
}
