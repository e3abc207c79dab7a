package origin

import (
	"os"
	"path/filepath"
	"testing"
)

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
