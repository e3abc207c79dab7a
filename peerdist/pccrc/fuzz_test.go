package pccrc

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/outpost-appliance/outpost/peerdist/allocs"
	"github.com/outpost-appliance/outpost/peerdist/vectors"
)

// contentInfoVectors lists every content information file in the shared
// vectors.
var contentInfoVectors = [][]string{
	{"peerdist-vectors", "ipxe", "iis85_ci_v1.bin"},
	{"peerdist-vectors", "ipxe", "iis85_ci_v2.bin"},
	{"mstest-vectors", "derived", "v1_SingleBlock_contentinfo.bin"},
	{"mstest-vectors", "derived", "v1_MultipleBlocks_contentinfo.bin"},
	{"mstest-vectors", "derived", "v1_MultipleSegments_contentinfo.bin"},
	{"mstest-vectors", "derived", "v2_SingleBlock_contentinfo_1seg.bin"},
	{"mstest-vectors", "derived", "v2_MultipleBlocks_contentinfo_1seg.bin"},
}

func FuzzParse(f *testing.F) {
	for _, path := range contentInfoVectors {
		f.Add(vectors.Read(f, path...))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ci, err := Parse(data)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error does not wrap ErrMalformed: %v", err)
			}
			return
		}
		raw, err := ci.MarshalBinary()
		if err != nil {
			t.Fatalf("decoded info does not marshal: %v", err)
		}
		if !bytes.Equal(raw, data) {
			t.Fatalf("re-encoding differs:\n got %x\nwant %x", raw, data)
		}
		ci.Range()
	})
}

// Cutting a valid vector anywhere (but after a whole V2 header) must give
// an error, never a panic.
func TestParseTruncated(t *testing.T) {
	for _, path := range contentInfoVectors {
		raw := vectors.Read(t, path...)
		if len(raw) > 4096 {
			raw = raw[:4096]
		}
		for n := range len(raw) {
			if raw[1] == 0x02 && n == headerSizeV2 {
				continue // a V2 header with no chunks is valid: empty content
			}
			if _, err := Parse(raw[:n]); !errors.Is(err, ErrMalformed) {
				t.Fatalf("%s cut to %d bytes: %v", path[len(path)-1], n, err)
			}
		}
	}
}

func TestParseRejects(t *testing.T) {
	v1 := vectors.Read(t, "peerdist-vectors", "ipxe", "iis85_ci_v1.bin")
	v2 := vectors.Read(t, "peerdist-vectors", "ipxe", "iis85_ci_v2.bin")
	patch := func(src []byte, off int, b ...byte) []byte {
		out := bytes.Clone(src)
		copy(out[off:], b)
		return out
	}
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"version 3", patch(v1, 0, 0x00, 0x03)},
		{"v1 unknown hash algo", patch(v1, 2, 0x0F, 0x80)},
		{"v1 block size 4096", patch(v1, 18+12, 0x00, 0x10, 0x00, 0x00)},
		{"v1 segment size 0", patch(v1, 18+8, 0, 0, 0, 0)},
		{"v1 segment over 32 MiB", patch(v1, 18+8, 0x01, 0x00, 0x00, 0x02)},
		{"v1 three block hashes for two blocks", append(patch(v1, 18+80, 3), make([]byte, 32)...)},
		{"v1 zero block hashes", patch(v1, 18+80, 0)[:18+84]},
		{"v1 trailing byte", append(bytes.Clone(v1), 0)},
		{"v1 huge segment count", patch(v1, 14, 0xFF, 0xFF, 0xFF, 0xFF)},
		{"v2 chunk type 1", patch(v2, 31, 0x01)},
		{"v2 chunk length not a multiple of 68", patch(v2, 32, 0, 0, 0, 67)},
		{"v2 chunk length past the end", patch(v2, 32, 0xFF, 0xFF, 0xFF, 0xFF)},
		{"v2 segment size 0", patch(v2, 36, 0, 0, 0, 0)},
		{"v2 segment over 128 KiB", patch(v2, 36, 0, 0x02, 0, 1)},
		{"v2 trailing partial chunk header", append(bytes.Clone(v2), 0, 0)},
	} {
		if _, err := Parse(tc.data); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err = %v, want ErrMalformed", tc.name, err)
		}
	}
}

// A count field claiming billions of entries is refused before anything
// proportional to it is allocated.
func TestParseAllocationBounded(t *testing.T) {
	v1 := bytes.Clone(vectors.Read(t, "peerdist-vectors", "ipxe", "iis85_ci_v1.bin"))
	hugeSegments := bytes.Clone(v1)
	binary.LittleEndian.PutUint32(hugeSegments[14:], 0xFFFFFFFF)
	hugeBlocks := bytes.Clone(v1)
	binary.LittleEndian.PutUint32(hugeBlocks[18+80:], 0xFFFFFFFF)
	hugeChunk := bytes.Clone(vectors.Read(t, "peerdist-vectors", "ipxe", "iis85_ci_v2.bin"))
	binary.BigEndian.PutUint32(hugeChunk[32:], 0xFFFFFFF0)
	// Many tiny valid V2 chunks: the most segments per input byte.
	manyChunks := append([]byte{0, 2, 4}, make([]byte, 28)...)
	for range 1000 {
		manyChunks = append(manyChunks, 0, 0, 0, 0, 0)
	}
	for name, input := range map[string][]byte{
		"v1 segment count": hugeSegments, "v1 block count": hugeBlocks,
		"v2 chunk length": hugeChunk, "v2 many empty chunks": manyChunks,
		"v1 multi-segment": vectors.Read(t, "mstest-vectors", "derived", "v1_MultipleSegments_contentinfo.bin"),
	} {
		allocs.Bounded(t, name, input, 8, 4096, func(b []byte) { Parse(b) })
	}
}
