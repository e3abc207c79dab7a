package board

import (
	"path/filepath"
	"testing"
)

func TestShippedBoards(t *testing.T) {
	root := filepath.Join("..", "..", "board")
	names, err := Names(root)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"qemu-amd64": "amd64", "qemu-arm64": "arm64", "pc-amd64": "amd64", "rpi": "arm64"}
	if len(names) != len(want) {
		t.Fatalf("boards %v, want %v", names, want)
	}
	for _, n := range names {
		b, err := Load(root, n)
		if err != nil {
			t.Fatal(err)
		}
		if b.Arch != want[n] {
			t.Errorf("%s: arch %s, want %s", n, b.Arch, want[n])
		}
	}
}
