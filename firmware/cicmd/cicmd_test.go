package cicmd

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/outpost-appliance/outpost/firmware/cli"
	"github.com/outpost-appliance/outpost/peerdist/vectors"
)

func run(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = Run(context.Background(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// summary mirrors the V1 part of mstest-vectors/derived/summary.json.
type summaryFile struct {
	Size int `json:"size"`
	V1   struct {
		Len      int    `json:"contentinfo_len"`
		SHA256   string `json:"contentinfo_sha256"`
		Segments []struct {
			Offset uint64 `json:"offset"`
			Cb     uint32 `json:"cb"`
			HoD    string `json:"hod"`
			Kp     string `json:"kp"`
			HoHoDk string `json:"hohodk"`
			Blocks int    `json:"cBlocks"`
		} `json:"segments"`
	} `json:"v1"`
}

// ptfServerSecret reads the content server's secret from the MS test
// suite's deployment configuration (its <Property name="ServerSecret">).
func ptfServerSecret(t *testing.T) string {
	var config struct {
		Properties []struct {
			Name  string `xml:"name,attr"`
			Value string `xml:"value,attr"`
		} `xml:"Properties>Property"`
	}
	raw := vectors.Read(t, "mstest-vectors", "BranchCache_TestSuite.deployment.ptfconfig")
	if err := xml.Unmarshal(raw, &config); err != nil {
		t.Fatalf("ptfconfig: %v", err)
	}
	for _, p := range config.Properties {
		if p.Name == "ServerSecret" {
			return p.Value
		}
	}
	t.Fatal("ptfconfig has no ServerSecret property")
	return ""
}

// `outpost ci hash` on the MS test suite's all-zero files with its server
// secret ("server secret") reproduces summary.json's V1 values exactly, and
// `show` prints them.
func TestHashReproducesMSTestSummary(t *testing.T) {
	var summary map[string]json.RawMessage
	vectors.JSON(t, &summary, "mstest-vectors", "derived", "summary.json")
	secret := ptfServerSecret(t)
	if secret != "server secret" {
		t.Fatalf("ptfconfig ServerSecret = %q", secret)
	}
	dir := t.TempDir()
	for _, name := range []string{"SingleBlock.txt", "MultipleBlocks.txt", "MultipleSegments.txt"} {
		t.Run(name, func(t *testing.T) {
			var want summaryFile
			if err := json.Unmarshal(summary[name], &want); err != nil {
				t.Fatal(err)
			}
			file := writeFile(t, dir, name, make([]byte, want.Size))
			ciPath := file + ".ci"
			if code, _, stderr := run(t, "hash", "--version", "1", "--secret", secret, file, "-o", ciPath); code != 0 {
				t.Fatalf("hash exited %d: %s", code, stderr)
			}
			raw, err := os.ReadFile(ciPath)
			if err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(raw)
			if len(raw) != want.V1.Len || hex.EncodeToString(sum[:]) != want.V1.SHA256 {
				t.Errorf("content information: %d bytes, sha256 %x; want %d bytes, %s", len(raw), sum, want.V1.Len, want.V1.SHA256)
			}
			code, stdout, stderr := run(t, "show", ciPath)
			if code != 0 {
				t.Fatalf("show exited %d: %s", code, stderr)
			}
			var shown shownInfo
			if err := json.Unmarshal([]byte(stdout), &shown); err != nil {
				t.Fatalf("show printed invalid JSON: %v\n%s", err, stdout)
			}
			if shown.Version != 1 || shown.HashAlgorithm != "SHA-256" || shown.Range.Start != 0 || shown.Range.End != uint64(want.Size) {
				t.Errorf("show header: %+v", shown)
			}
			if len(shown.Segments) != len(want.V1.Segments) {
				t.Fatalf("show lists %d segments, want %d", len(shown.Segments), len(want.V1.Segments))
			}
			for i, w := range want.V1.Segments {
				s := shown.Segments[i]
				if s.Index != uint64(i) || s.Offset != w.Offset || s.Size != w.Cb || s.HoD != w.HoD || s.Kp != w.Kp || s.SegmentID != w.HoHoDk || len(s.Blocks) != w.Blocks {
					t.Errorf("segment %d: %+v", i, s)
				}
			}
			if code, stdout, stderr := run(t, "verify", "--secret", secret, ciPath, file); code != 0 || !strings.HasPrefix(stdout, "OK") {
				t.Errorf("verify exited %d: %s%s", code, stdout, stderr)
			}
		})
	}
}

// The real IIS content information shows the segment IDs iPXE derived.
func TestShowIISContentInfo(t *testing.T) {
	for _, tc := range []struct {
		file string
		ids  []string
	}{
		{"iis85_ci_v1.bin", []string{"491b217dbee2b5f12ca79b015e06f4bbe64f9745bad7867aef17de59927edce9"}},
		{"iis85_ci_v2.bin", []string{"3371bbeaddb62353adcef970a06fdf65001e0421f4c7108276b0c37a9f9ec10f", "d7e924425e8f4f88f01dc6a9bb1bc37be113ec7917c745d4965c2b55fa163a6e"}},
	} {
		code, stdout, stderr := run(t, "show", vectors.Path(t, "peerdist-vectors", "ipxe", tc.file))
		if code != 0 {
			t.Fatalf("%s: show exited %d: %s", tc.file, code, stderr)
		}
		var shown shownInfo
		if err := json.Unmarshal([]byte(stdout), &shown); err != nil {
			t.Fatal(err)
		}
		for i, id := range tc.ids {
			if shown.Segments[i].SegmentID != id {
				t.Errorf("%s segment %d ID %s, want %s", tc.file, i, shown.Segments[i].SegmentID, id)
			}
		}
		if shown.Range.End != 99710 {
			t.Errorf("%s: range end %d", tc.file, shown.Range.End)
		}
	}
}

func TestVerifyNamesTheBadBlock(t *testing.T) {
	dir := t.TempDir()
	data := bytes.Repeat([]byte("outpost "), 40_000) // 320 000 bytes, 5 blocks
	file := writeFile(t, dir, "data", data)
	ciPath := filepath.Join(dir, "data.ci")
	if code, _, stderr := run(t, "hash", "--version", "1", "--secret-hex", "00ff", "-o", ciPath, file); code != 0 {
		t.Fatal(stderr)
	}
	bad := bytes.Clone(data)
	bad[3*65536+5] ^= 0x20
	badFile := writeFile(t, dir, "bad", bad)
	code, _, stderr := run(t, "verify", ciPath, badFile)
	if code != cli.ExitFailed || !strings.Contains(stderr, "segment 0 block 3") {
		t.Errorf("verify of a corrupted block exited %d: %s", code, stderr)
	}
	code, _, stderr = run(t, "verify", ciPath, writeFile(t, dir, "long", append(bytes.Clone(data), 'x')))
	if code != cli.ExitFailed || !strings.Contains(stderr, "the file has 320001") {
		t.Errorf("verify of a longer file exited %d: %s", code, stderr)
	}
	code, _, stderr = run(t, "verify", "--secret", "wrong", ciPath, file)
	if code != cli.ExitFailed || !strings.Contains(stderr, "segment secret") {
		t.Errorf("verify with the wrong secret exited %d: %s", code, stderr)
	}
}

func TestHashV2AndRange(t *testing.T) {
	dir := t.TempDir()
	data := make([]byte, 1<<20)
	for i := range data {
		data[i] = byte(i * 7 >> 3)
	}
	file := writeFile(t, dir, "data", data)
	for _, tc := range []struct {
		args       []string
		start, end uint64
	}{
		{[]string{"--version", "2"}, 0, 1 << 20},
		{[]string{"--version", "2", "--range", "300000:1000"}, 300000, 301000},
		{[]string{"--version", "1", "--range", "70000:10"}, 70000, 70010},
		{[]string{"--version", "1", "--hash", "sha512"}, 0, 1 << 20},
	} {
		ciPath := filepath.Join(dir, "out.ci")
		args := append(append([]string{"hash", "--secret", "s"}, tc.args...), file, "-o", ciPath)
		if code, _, stderr := run(t, args...); code != 0 {
			t.Fatalf("%v: %s", tc.args, stderr)
		}
		code, stdout, _ := run(t, "show", ciPath)
		var shown shownInfo
		if code != 0 || json.Unmarshal([]byte(stdout), &shown) != nil {
			t.Fatalf("%v: show failed", tc.args)
		}
		if shown.Range.Start != tc.start || shown.Range.End != tc.end {
			t.Errorf("%v: range [%d, %d)", tc.args, shown.Range.Start, shown.Range.End)
		}
		if code, stdout, stderr := run(t, "verify", "--secret", "s", ciPath, file); code != 0 {
			t.Errorf("%v: verify exited %d: %s%s", tc.args, code, stdout, stderr)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	dir := t.TempDir()
	file := writeFile(t, dir, "f", []byte("x"))
	for _, args := range [][]string{
		{},
		{"frobnicate"},
		{"hash", file, "-o", filepath.Join(dir, "o")}, // no secret
		{"hash", "--secret", "a", "--secret-hex", "00", file, "-o", filepath.Join(dir, "o")},
		{"hash", "--secret", "a", file}, // no -o
		{"hash", "--secret", "a", "--version", "3", file, "-o", filepath.Join(dir, "o")},
		{"hash", "--secret", "a", "--range", "5", file, "-o", filepath.Join(dir, "o")},
		{"hash", "--secret-hex", "zz", file, "-o", filepath.Join(dir, "o")},
		{"hash", "--secret", "a", "--version", "2", "--hash", "sha384", file, "-o", filepath.Join(dir, "o")},
		{"show"},
		{"verify", file},
	} {
		if code, _, stderr := run(t, args...); code != cli.ExitUsage {
			t.Errorf("%q exited %d, want %d: %s", args, code, cli.ExitUsage, stderr)
		}
	}
	if code, _, stderr := run(t, "show", file); code != cli.ExitInternal || !strings.Contains(stderr, "malformed") {
		t.Errorf("show of a non-.ci file exited %d: %s", code, stderr)
	}
	if code, _, _ := run(t, "hash", "--secret", "a", "--range", "5:10", file, "-o", filepath.Join(dir, "o")); code == 0 {
		t.Error("a range past the end of the file was accepted")
	}
}
