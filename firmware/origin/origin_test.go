package origin

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func TestPassphraseSecret(t *testing.T) {
	tests := []struct {
		in   string
		want []byte
	}{
		{"server secret", []byte("s\x00e\x00r\x00v\x00e\x00r\x00 \x00s\x00e\x00c\x00r\x00e\x00t\x00")},
		{"é", []byte{0xe9, 0x00}},
		{"😀", []byte{0x3d, 0xd8, 0x00, 0xde}}, // a surrogate pair, as Windows encodes it
	}
	for _, tt := range tests {
		if got := PassphraseSecret(tt.in); !bytes.Equal(got, tt.want) {
			t.Errorf("PassphraseSecret(%q) = %x, want %x", tt.in, got, tt.want)
		}
	}
	dir := t.TempDir()
	for content, want := range map[string]string{"branch office\n": "branch office", "x\r\n": "x", "a b": "a b"} {
		p := filepath.Join(dir, "s")
		os.WriteFile(p, []byte(content), 0o600)
		got, err := ReadSecretFile(p)
		if err != nil || !bytes.Equal(got, PassphraseSecret(want)) {
			t.Errorf("ReadSecretFile(%q) = %x, %v", content, got, err)
		}
	}
	os.WriteFile(filepath.Join(dir, "empty"), []byte("\n"), 0o600)
	if _, err := ReadSecretFile(filepath.Join(dir, "empty")); err == nil {
		t.Error("empty secret file accepted")
	}
}

func TestDefaultCacheDir(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", "/srv/cache")
	if got := DefaultCacheDir(); got != "/srv/cache/outpost-origin" {
		t.Errorf("with XDG_CACHE_HOME: %s", got)
	}
	t.Setenv("XDG_CACHE_HOME", "relative")
	want := "/var/cache/outpost-origin"
	if os.Geteuid() != 0 {
		home, _ := os.UserHomeDir()
		want = filepath.Join(home, ".cache", "outpost-origin")
	}
	if got := DefaultCacheDir(); got != want {
		t.Errorf("without XDG_CACHE_HOME: %s, want %s", got, want)
	}
}
