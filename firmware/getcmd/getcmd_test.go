package getcmd

import (
	"bytes"
	"context"
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/outpost-appliance/outpost/cache/retrieval"
	"github.com/outpost-appliance/outpost/firmware/cli"
	"github.com/outpost-appliance/outpost/peerdist/pccrc"
)

type fixture struct {
	dir, ciPath string
	data        []byte
	info        *pccrc.Info
}

func newFixture(t *testing.T, version pccrc.Version, size int, rangeStart, rangeLen uint64) fixture {
	t.Helper()
	dir := t.TempDir()
	data := make([]byte, size)
	rand.NewChaCha8([32]byte{byte(size)}).Read(data)
	var ci *pccrc.Info
	var err error
	if version == pccrc.V1 {
		ci, err = pccrc.GenerateV1(context.Background(), bytes.NewReader(data), pccrc.SHA256, []byte("k"))
	} else {
		ci, err = pccrc.GenerateV2(context.Background(), bytes.NewReader(data), []byte("k"))
	}
	if err != nil {
		t.Fatal(err)
	}
	if rangeLen > 0 {
		if ci, err = ci.Restrict(rangeStart, rangeLen); err != nil {
			t.Fatal(err)
		}
	}
	raw, err := ci.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	ciPath := filepath.Join(dir, "content.ci")
	if err := os.WriteFile(ciPath, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	return fixture{dir: dir, ciPath: ciPath, data: data, info: ci}
}

// serveContent runs a retrieval server for the fixture's whole content.
func serveContent(t *testing.T, data []byte, version pccrc.Version) string {
	t.Helper()
	var ci *pccrc.Info
	var err error
	if version == pccrc.V1 {
		ci, err = pccrc.GenerateV1(context.Background(), bytes.NewReader(data), pccrc.SHA256, []byte("k"))
	} else {
		ci, err = pccrc.GenerateV2(context.Background(), bytes.NewReader(data), []byte("k"))
	}
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(&retrieval.Server{Source: retrieval.NewContentSource(ci, bytes.NewReader(data))})
	t.Cleanup(ts.Close)
	return strings.TrimPrefix(ts.URL, "http://")
}

func run(args ...string) (int, string, string) {
	var stdout, stderr bytes.Buffer
	code := Run(context.Background(), args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func TestGetWholeAndRanges(t *testing.T) {
	for _, tc := range []struct {
		name          string
		version       pccrc.Version
		size          int
		start, length uint64
		extra         []string
	}{
		{"v1 one byte", pccrc.V1, 1, 0, 0, nil},
		{"v1 one block", pccrc.V1, 65536, 0, 0, nil},
		{"v1 many blocks", pccrc.V1, 1_000_000, 0, 0, nil},
		{"v1 two segments", pccrc.V1, pccrc.SegmentSizeV1 + 70_000, 0, 0, nil},
		{"v1 range", pccrc.V1, 1_000_000, 70_000, 200_000, nil},
		{"v2 many segments", pccrc.V2, 1_500_000, 0, 0, []string{"--v2-seglist"}},
		{"v2 range", pccrc.V2, 1_500_000, 400_000, 10, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fx := newFixture(t, tc.version, tc.size, tc.start, tc.length)
			addr := serveContent(t, fx.data, tc.version)
			out := filepath.Join(fx.dir, "out")
			args := append([]string{"--from", addr, "--ci", fx.ciPath, "-o", out, "--json"}, tc.extra...)
			code, stdout, stderr := run(args...)
			if code != cli.ExitOK {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			got, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			start, end := fx.info.Range()
			if !bytes.Equal(got, fx.data[start:end]) {
				t.Errorf("output differs from the content range [%d, %d)", start, end)
			}
			var res Result
			if err := json.Unmarshal([]byte(stdout), &res); err != nil || res.Bytes != end-start {
				t.Errorf("summary %q: %v", stdout, err)
			}
		})
	}
}

// A peer that lacks a block, or serves bytes that fail their hash, makes
// get exit 1 naming the segment and block, and leaves no output file.
func TestGetFailsNamingTheBlock(t *testing.T) {
	fx := newFixture(t, pccrc.V1, 300_000, 0, 0)
	out := filepath.Join(fx.dir, "out")

	tampered := bytes.Clone(fx.data)
	tampered[2*65536+9] ^= 1 // block 2
	// A peer serving the genuine segment IDs with tampered bytes.
	genuine := httptest.NewServer(&retrieval.Server{Source: retrieval.NewContentSource(fx.info, bytes.NewReader(tampered))})
	defer genuine.Close()
	code, _, stderr := run("--from", strings.TrimPrefix(genuine.URL, "http://"), "--ci", fx.ciPath, "-o", out)
	if code != cli.ExitFailed || !strings.Contains(stderr, "segment 0") || !strings.Contains(stderr, "block 2") || !strings.Contains(stderr, "verif") {
		t.Errorf("tampered block: exit %d: %s", code, stderr)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("output file left behind: %v", err)
	}
	// A peer holding other content (its own IDs): every block is missing.
	code, _, stderr = run("--from", serveContent(t, tampered, pccrc.V1), "--ci", fx.ciPath, "-o", out)
	if code != cli.ExitFailed || !strings.Contains(stderr, "not held") {
		t.Errorf("missing blocks: exit %d: %s", code, stderr)
	}
	empty := httptest.NewServer(http.NotFoundHandler())
	defer empty.Close()
	code, _, stderr = run("--from", strings.TrimPrefix(empty.URL, "http://"), "--ci", fx.ciPath, "-o", out)
	if code != cli.ExitFailed || !strings.Contains(stderr, "404") {
		t.Errorf("not a peer: exit %d: %s", code, stderr)
	}
}

func TestGetUsage(t *testing.T) {
	for _, args := range [][]string{{}, {"--from", "x"}, {"--from", "x", "--ci", "y", "-o", "z", "extra"}, {"--parallel", "0", "--from", "x", "--ci", "y", "-o", "z"}} {
		if code, _, _ := run(args...); code != cli.ExitUsage {
			t.Errorf("%q: exit %d", args, code)
		}
	}
}
