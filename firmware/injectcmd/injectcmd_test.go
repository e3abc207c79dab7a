package injectcmd

import (
	"bytes"
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/outpost-appliance/outpost/cache/preload"
	"github.com/outpost-appliance/outpost/peerdist/pccrc"
)

func TestUsage(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "f")
	os.WriteFile(f, []byte("data"), 0o644)
	os.WriteFile(filepath.Join(dir, "empty.key"), []byte("\n"), 0o600)
	tests := []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{f}, 2, "one of --secret, --secret-file or --secret-hex"},
		{[]string{"--secret", "a", "--secret-hex", "00", f}, 2, "one of --secret"},
		{[]string{"--secret", "a"}, 2, "at least one file"},
		{[]string{"--secret", "a", "--version", "3", f}, 2, "version 3"},
		{[]string{"--secret", "a", "--version", "1,1", f}, 2, "twice"},
		{[]string{"--secret-hex", "zz", f}, 2, "--secret-hex"},
		{[]string{"--secret-file", filepath.Join(dir, "empty.key"), f}, 2, "is empty"},
		{[]string{"--secret", "a", filepath.Join(dir, "nope")}, 3, "no such file"},
		{[]string{"--secret", "a", "--api", "http://127.0.0.1:1", f}, 3, "is outpost running?"},
	}
	for _, tt := range tests {
		var out, errOut bytes.Buffer
		code := Run(context.Background(), tt.args, &out, &errOut)
		if code != tt.code || !strings.Contains(errOut.String(), tt.msg) {
			t.Errorf("%q: exit %d, want %d; stderr %q", tt.args, code, tt.code, errOut.String())
		}
	}
}

// Pieces of a missing range start and end on unit boundaries and are
// about the size asked for.
func TestChunks(t *testing.T) {
	data := make([]byte, 3<<20+12345)
	rand.NewChaCha8([32]byte{1}).Read(data)
	for _, v := range []pccrc.Version{pccrc.V1, pccrc.V2} {
		var ci *pccrc.Info
		if v == pccrc.V1 {
			ci, _ = pccrc.GenerateV1(context.Background(), bytes.NewReader(data), pccrc.SHA256, []byte("k"))
		} else {
			ci, _ = pccrc.GenerateV2(context.Background(), bytes.NewReader(data), []byte("k"))
		}
		boundaries := map[uint64]bool{uint64(len(data)): true}
		for _, s := range ci.Segments {
			for off := uint64(0); off < uint64(s.Size); off += pccrc.BlockSize {
				if v == pccrc.V1 || off == 0 {
					boundaries[s.Offset+off] = true
				}
			}
		}
		start := uint64(5 * pccrc.BlockSize)
		if v == pccrc.V2 {
			start = ci.Segments[2].Offset
		}
		r := preload.Range{Start: start, End: uint64(len(data))}
		pieces := chunks(ci, r, 1<<20)
		if len(pieces) < 2 || pieces[0].Start != r.Start || pieces[len(pieces)-1].End != r.End {
			t.Fatalf("V%d: %v", v, pieces)
		}
		for i, p := range pieces {
			if !boundaries[p.Start] || !boundaries[p.End] || p.End <= p.Start || (i > 0 && pieces[i-1].End != p.Start) {
				t.Errorf("V%d piece %d %v is not on unit boundaries", v, i, p)
			}
			if i < len(pieces)-1 && (p.End-p.Start < 1<<20 || p.End-p.Start > 1<<20+pccrc.MaxSegmentSizeV2) {
				t.Errorf("V%d piece %d is %d bytes", v, i, p.End-p.Start)
			}
		}
	}
}
