// Package vectors is test support: it locates and reads the shared test
// vectors (../shared beside the repository) for any package's tests. The vectors are read in place and
// never copied into the repository: part of the data comes from other
// projects.
//
// Where ../shared is missing (a user's fresh clone) a test that needs it is
// skipped with a message saying so; under CI (CI=true) it fails instead, so
// a CI run can never pass by silently testing nothing.
package vectors

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Dir returns the shared vectors directory (the folder holding
// peerdist-vectors/ and mstest-vectors/). OUTPOST_SHARED overrides the
// default location, which is ../shared relative to the module root.
func Dir(tb testing.TB) string {
	tb.Helper()
	if dir := os.Getenv("OUTPOST_SHARED"); dir != "" {
		return requireDir(tb, dir)
	}
	wd, err := os.Getwd()
	if err != nil {
		tb.Fatalf("vectors: working directory: %v", err)
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return requireDir(tb, filepath.Join(dir, "..", "shared"))
		}
		if filepath.Dir(dir) == dir {
			tb.Fatalf("vectors: no go.mod above %s", wd)
		}
	}
}

func requireDir(tb testing.TB, dir string) string {
	tb.Helper()
	if st, err := os.Stat(filepath.Join(dir, "peerdist-vectors")); err == nil && st.IsDir() {
		return dir
	}
	msg := "vectors: shared test vectors not found at " + dir +
		" (clone the shared data beside the repository, or set OUTPOST_SHARED)"
	if os.Getenv("CI") == "true" {
		tb.Fatal(msg + "; under CI this is a failure")
	}
	tb.Skip(msg)
	return ""
}

// Path joins elem onto the shared vectors directory.
func Path(tb testing.TB, elem ...string) string {
	tb.Helper()
	return filepath.Join(append([]string{Dir(tb)}, elem...)...)
}

// Read returns the bytes of a shared vector file.
func Read(tb testing.TB, elem ...string) []byte {
	tb.Helper()
	data, err := os.ReadFile(Path(tb, elem...))
	if err != nil {
		tb.Fatalf("vectors: %v", err)
	}
	return data
}

// JSON decodes a shared JSON vector file into v.
func JSON(tb testing.TB, v any, elem ...string) {
	tb.Helper()
	if err := json.Unmarshal(Read(tb, elem...), v); err != nil {
		tb.Fatalf("vectors: %s: %v", filepath.Join(elem...), err)
	}
}

// Hex decodes a hex string, failing the test on bad input.
func Hex(tb testing.TB, s string) []byte {
	tb.Helper()
	b, err := hex.DecodeString(strings.TrimSpace(s))
	if err != nil {
		tb.Fatalf("vectors: hex %q: %v", s, err)
	}
	return b
}

// HexFile reads a hex text file (any whitespace between digits).
func HexFile(tb testing.TB, elem ...string) []byte {
	tb.Helper()
	return Hex(tb, strings.Join(strings.Fields(string(Read(tb, elem...))), ""))
}

// Golden is one named wire message from a golden_messages table.
type Golden struct {
	Name string
	Data []byte
}

// GoldenTable reads a golden-message table: lines of name<TAB>hex[<TAB>
// description], '#' comments ignored. Both shared tables use this shape.
func GoldenTable(tb testing.TB, elem ...string) []Golden {
	tb.Helper()
	var out []Golden
	for _, line := range strings.Split(string(Read(tb, elem...)), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Split(line, "\t")
		if len(fields) < 2 {
			tb.Fatalf("vectors: golden line without hex: %q", line)
		}
		hexText := fields[1]
		// Base64 and plain-text rows (pccrd scopes) are not hex messages.
		if _, err := hex.DecodeString(hexText); err != nil {
			continue
		}
		out = append(out, Golden{Name: fields[0], Data: Hex(tb, hexText)})
	}
	return out
}

// Lookup returns the golden message with the given name.
func Lookup(tb testing.TB, table []Golden, name string) []byte {
	tb.Helper()
	for _, g := range table {
		if g.Name == name {
			return g.Data
		}
	}
	tb.Fatalf("vectors: no golden message %q", name)
	return nil
}
