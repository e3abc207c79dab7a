package pccrr

import (
	"testing"

	"github.com/outpost-appliance/outpost/peerdist/vectors"
)

// known holds the values the vector READMEs describe, read from the
// vectors' own JSON files rather than copied into the repository.
type known struct {
	v1Seg, v2SegA, v2SegB []byte // peerdist-vectors: IIS content
	mbSeg, mbV2Seg        []byte // mstest-vectors: MultipleBlocks.txt V1 seg 0, V2 single segment
	mbKp                  []byte // Kp of MultipleBlocks.txt V1 segment 0
	mbLastBlockHash       []byte // SHA-256 of its block 1
	mbLastBlockLen        int    // 15 360
	mbCiphertextSHA256    map[string][]byte
}

func loadKnown(t testing.TB) known {
	t.Helper()
	var iis struct {
		V1 struct {
			Segments []struct{ Hohodk string } `json:"segments"`
		} `json:"v1"`
		V2 struct {
			Segments []struct{ Hohodk string } `json:"segments"`
		} `json:"v2"`
	}
	vectors.JSON(t, &iis, "peerdist-vectors", "ipxe", "iis85_expected.json")

	type segment struct {
		Kp            string `json:"kp"`
		Hohodk        string `json:"hohodk"`
		CB            int    `json:"cb"`
		BlockHashLast string `json:"blockhash_last"`
	}
	var summary struct {
		MultipleBlocks struct {
			V1 struct {
				Segments []segment `json:"segments"`
			} `json:"v1"`
			V2 segment `json:"v2_single_segment_assumption"`
		} `json:"MultipleBlocks.txt"`
		AES struct {
			Key32SHA256 string `json:"key32_aes256_ct_sha256"`
			Key16SHA256 string `json:"key16_aes128_ct_sha256"`
		} `json:"aes_block1_multipleblocks"`
	}
	vectors.JSON(t, &summary, "mstest-vectors", "derived", "summary.json")

	if len(iis.V1.Segments) != 1 || len(iis.V2.Segments) != 2 || len(summary.MultipleBlocks.V1.Segments) != 1 {
		t.Fatalf("vector JSON files do not have the expected segments")
	}
	mb := summary.MultipleBlocks.V1.Segments[0]
	return known{
		v1Seg:           vectors.Hex(t, iis.V1.Segments[0].Hohodk),
		v2SegA:          vectors.Hex(t, iis.V2.Segments[0].Hohodk),
		v2SegB:          vectors.Hex(t, iis.V2.Segments[1].Hohodk),
		mbSeg:           vectors.Hex(t, mb.Hohodk),
		mbV2Seg:         vectors.Hex(t, summary.MultipleBlocks.V2.Hohodk),
		mbKp:            vectors.Hex(t, mb.Kp),
		mbLastBlockHash: vectors.Hex(t, mb.BlockHashLast),
		mbLastBlockLen:  mb.CB % 65536,
		mbCiphertextSHA256: map[string][]byte{
			"pccrr_blk_seg0_blk1_key32_aes256": vectors.Hex(t, summary.AES.Key32SHA256),
			"pccrr_blk_seg0_blk1_key16_aes128": vectors.Hex(t, summary.AES.Key16SHA256),
		},
	}
}

// goldenPCCRR returns every pccrr_* message of both golden tables, names
// prefixed with the table ("peerdist/" or "mstest/").
func goldenPCCRR(t testing.TB) []vectors.Golden {
	t.Helper()
	var out []vectors.Golden
	add := func(prefix string, table []vectors.Golden) {
		for _, g := range table {
			if len(g.Name) > 6 && g.Name[:6] == "pccrr_" {
				out = append(out, vectors.Golden{Name: prefix + g.Name, Data: g.Data})
			}
		}
	}
	add("peerdist/", vectors.GoldenTable(t, "peerdist-vectors", "derived", "golden_messages.tsv"))
	add("mstest/", vectors.GoldenTable(t, "mstest-vectors", "derived", "golden_messages.txt"))
	return out
}

// requestID returns the 16-byte RequestID b, b+step, b+2·step, ….
func requestID(step byte) (id [16]byte) {
	for i := range id {
		id[i] = byte(i) * step
	}
	return id
}

// parseAny decodes b with ParseResponse or ParseRequest.
func parseAny(b []byte, response bool) (Message, error) {
	if response {
		return ParseResponse(b)
	}
	return ParseRequest(b)
}
