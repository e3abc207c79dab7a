package pchc

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/outpost-appliance/outpost/peerdist/vectors"
)

// namedVector is one PCHC wire message from the shared vectors. Name is
// prefixed with its source ("peerdist/", "mstest/", "bin/") because both
// golden tables use the same names for the responses.
type namedVector struct {
	Name string
	Data []byte
}

func (v namedVector) isResponse() bool { return strings.Contains(v.Name, "pchc_response_") }

// pchcVectors returns every pchc_* message of both golden tables and every
// peerdist-vectors/derived/pchc_*.bin file.
func pchcVectors(tb testing.TB) []namedVector {
	tb.Helper()
	var out []namedVector
	tables := []struct {
		source string
		elem   []string
	}{
		{"peerdist/", []string{"peerdist-vectors", "derived", "golden_messages.tsv"}},
		{"mstest/", []string{"mstest-vectors", "derived", "golden_messages.txt"}},
	}
	for _, table := range tables {
		for _, g := range vectors.GoldenTable(tb, table.elem...) {
			if strings.HasPrefix(g.Name, "pchc_") {
				out = append(out, namedVector{table.source + g.Name, g.Data})
			}
		}
	}
	bins, err := filepath.Glob(vectors.Path(tb, "peerdist-vectors", "derived", "pchc_*.bin"))
	if err != nil {
		tb.Fatal(err)
	}
	for _, path := range bins {
		data, err := os.ReadFile(path)
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, namedVector{"bin/" + strings.TrimSuffix(filepath.Base(path), ".bin"), data})
	}
	if len(out) == 0 {
		tb.Fatal("no pchc vectors found")
	}
	return out
}

// requestVector returns one named request vector, failing if it is absent.
func requestVector(tb testing.TB, name string) []byte {
	tb.Helper()
	for _, v := range pchcVectors(tb) {
		if v.Name == name {
			return v.Data
		}
	}
	tb.Fatalf("no vector %q", name)
	return nil
}

// ipxeExpected is the part of peerdist-vectors/ipxe/iis85_expected.json the
// PCHC vectors were built from.
type ipxeExpected struct {
	V1 struct {
		Segments []struct {
			CbSegment uint32 `json:"cbSegment"`
			HoHoDk    string `json:"hohodk"`
		} `json:"segments"`
	} `json:"v1"`
	V2 struct {
		Segments []struct {
			CbSegment uint32 `json:"cbSegment"`
			HoHoDk    string `json:"hohodk"`
		} `json:"segments"`
	} `json:"v2"`
}

// mstestFile is one file's entry in mstest-vectors/derived/summary.json.
type mstestFile struct {
	Size uint32 `json:"size"`
	V1   struct {
		Segments []struct {
			HoHoDk string `json:"hohodk"`
		} `json:"segments"`
	} `json:"v1"`
	V2 struct {
		HoHoDk string `json:"hohodk"`
	} `json:"v2_single_segment_assumption"`
}

func loadIPXEExpected(tb testing.TB) ipxeExpected {
	tb.Helper()
	var e ipxeExpected
	vectors.JSON(tb, &e, "peerdist-vectors", "ipxe", "iis85_expected.json")
	return e
}

func loadMSTestMultipleBlocks(tb testing.TB) mstestFile {
	tb.Helper()
	var summary struct {
		MultipleBlocks *mstestFile `json:"MultipleBlocks.txt"`
	}
	vectors.JSON(tb, &summary, "mstest-vectors", "derived", "summary.json")
	if summary.MultipleBlocks == nil {
		tb.Fatal("summary.json has no MultipleBlocks.txt")
	}
	return *summary.MultipleBlocks
}
