package origin

import (
	"context"
	"crypto/sha256"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/outpost-appliance/outpost/peerdist/pccrc"
)

// benchFileSize is the file hashed by the hashing benchmarks (read from
// the page cache after the first pass).
const benchFileSize = 64 << 20

// Hashing a file as the origin does (read, generate, marshal) compared
// with the baseline of reading the same file through plain SHA-256 in the
// same run: BenchmarkHashFileV1 / BenchmarkRawSHA256File is the cost of
// content information over the cheapest possible fingerprint.
func BenchmarkHashFileV1(b *testing.B) { benchHashFile(b, pccrc.V1) }
func BenchmarkHashFileV2(b *testing.B) { benchHashFile(b, pccrc.V2) }

func benchHashFile(b *testing.B, v pccrc.Version) {
	f, st := benchFile(b)
	b.SetBytes(benchFileSize)
	for b.Loop() {
		if _, err := generate(context.Background(), f, v, st, []byte("secret")); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRawSHA256File(b *testing.B) {
	f, _ := benchFile(b)
	b.SetBytes(benchFileSize)
	buf := make([]byte, 4<<20)
	for b.Loop() {
		h := sha256.New()
		if _, err := io.CopyBuffer(h, io.NewSectionReader(f, 0, benchFileSize), buf); err != nil {
			b.Fatal(err)
		}
		h.Sum(nil)
	}
}

func benchFile(b *testing.B) (*os.File, stamp) {
	b.Helper()
	p := filepath.Join(b.TempDir(), "bench.bin")
	if err := os.WriteFile(p, randomBytes(benchFileSize, 99), 0o644); err != nil {
		b.Fatal(err)
	}
	f, err := os.Open(p)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { f.Close() })
	fi, _ := f.Stat()
	return f, stampOf(fi)
}

// Answering a Windows 8 client with content information from memory
// compared with serving the same 1 MiB file plainly, per request through
// the handler (no network).
func BenchmarkServePeerDist(b *testing.B) { benchServe(b, win8) }
func BenchmarkServePlain(b *testing.B)    { benchServe(b, nil) }

func benchServe(b *testing.B, headers []string) {
	fx := newFixture(b, nil)
	fx.write(b, "f.bin", 1<<20, 7)
	fx.waitHashed(b, "f.bin", pccrc.V2)
	req := httptest.NewRequest("GET", "/f.bin", nil)
	for i := 0; i < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	for b.Loop() {
		w := &discardWriter{h: http.Header{}}
		fx.srv.ServeHTTP(w, req)
	}
}

type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (d *discardWriter) WriteHeader(int)             {}
