package api

import (
	"os"
	"path/filepath"
	"testing"
)

func TestReadMemory(t *testing.T) {
	m := readMemory()
	if m.ProcessAnonBytes == 0 || m.GoHeapBytes == 0 || m.SystemTotalBytes == 0 || m.SystemAvailableBytes > m.SystemTotalBytes {
		t.Fatalf("memory figures %+v", m)
	}
}

func TestProcKiB(t *testing.T) {
	path := filepath.Join(t.TempDir(), "status")
	os.WriteFile(path, []byte("Name:\toutpost\nRssAnon:\t   12345 kB\nRssFile:\t 77 kB\nbroken\n"), 0o644)
	got := procKiB(path, "RssAnon:", "RssFile:", "Missing:")
	if got[0] != 12345 || got[1] != 77 || got[2] != 0 {
		t.Fatalf("procKiB = %v", got)
	}
	if got := procKiB(filepath.Join(t.TempDir(), "absent"), "RssAnon:"); got[0] != 0 {
		t.Fatalf("absent file: %v", got)
	}
}
