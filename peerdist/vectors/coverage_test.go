package vectors

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// Every shared vector file must be read by some test in the repository:
// each one is to be decoded, checked and re-encoded. A file that no test
// names in a quoted string (its file name, or a glob such as "pccrr_*.bin")
// fails this test, so a vector added to ../shared later cannot be silently
// ignored.
func TestEveryVectorFileIsUsed(t *testing.T) {
	shared := Dir(t)
	var tests strings.Builder
	err := filepath.WalkDir(moduleRoot(t), func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "bin" || d.Name() == "build") {
			return filepath.SkipDir
		}
		if strings.HasSuffix(path, "_test.go") && !strings.HasSuffix(path, "coverage_test.go") {
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			tests.Write(data)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	corpus := tests.String()
	// Quoted glob patterns ("pccrr_*.bin") cover every file they match.
	var globs []string
	for _, m := range regexp.MustCompile(`"([^"*/]*\*[^"/]*)"`).FindAllStringSubmatch(corpus, -1) {
		globs = append(globs, m[1])
	}
	named := func(name string) bool {
		if strings.Contains(corpus, `"`+name+`"`) {
			return true
		}
		for _, g := range globs {
			if ok, _ := filepath.Match(g, name); ok {
				return true
			}
		}
		return false
	}
	for _, dir := range []string{"peerdist-vectors", "mstest-vectors"} {
		err := filepath.WalkDir(filepath.Join(shared, dir), func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || d.Name() == "README.md" {
				return err
			}
			if !named(d.Name()) {
				rel, _ := filepath.Rel(shared, path)
				t.Errorf("no test reads %s", rel)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

func moduleRoot(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		if filepath.Dir(dir) == dir {
			t.Fatal("no go.mod above the test")
		}
	}
}
