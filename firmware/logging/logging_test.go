package logging

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/outpost-appliance/outpost/firmware/config"
)

func ringBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var total int64
	for _, name := range []string{CurrentFile, PreviousFile} {
		if st, err := os.Stat(filepath.Join(dir, name)); err == nil {
			total += st.Size()
		}
	}
	return total
}

// The ring stays within its size however much is written, keeps the newest
// records whole, and carries on after a "reboot" (close and reopen).
func TestRingBoundedAndPersistent(t *testing.T) {
	tests := []struct {
		name    string
		size    int64
		records int
		recLen  int
	}{
		{"small records", 4 << 10, 2000, 40},
		{"records near half the ring", 1 << 10, 50, 400},
		{"one record larger than the ring", 1 << 10, 3, 5000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			r, err := OpenRing(dir, tt.size)
			if err != nil {
				t.Fatal(err)
			}
			write := func(i int) {
				rec := fmt.Sprintf("%06d %s\n", i, strings.Repeat("x", tt.recLen))
				if _, err := r.Write([]byte(rec)); err != nil {
					t.Fatal(err)
				}
			}
			for i := 0; i < tt.records; i++ {
				write(i)
				if got := ringBytes(t, dir); got > tt.size {
					t.Fatalf("after record %d the ring holds %d bytes, over its %d", i, got, tt.size)
				}
			}
			if err := r.Close(); err != nil {
				t.Fatal(err)
			}
			// After a reboot: reopen and append.
			r, err = OpenRing(dir, tt.size)
			if err != nil {
				t.Fatal(err)
			}
			write(tt.records)
			r.Close()
			lines, err := ReadRing(dir, 0)
			if err != nil {
				t.Fatal(err)
			}
			if len(lines) == 0 {
				t.Fatal("ring is empty")
			}
			last := string(lines[len(lines)-1])
			if !strings.HasPrefix(last, fmt.Sprintf("%06d ", tt.records)) {
				t.Errorf("newest record is %.20q, want record %d", last, tt.records)
			}
			prev := -1
			for _, l := range lines {
				var n int
				if _, err := fmt.Sscanf(string(l), "%06d", &n); err != nil || n <= prev {
					t.Fatalf("records out of order or torn: %.30q after %d", l, prev)
				}
				prev = n
			}
			if got := ringBytes(t, dir); got > tt.size {
				t.Errorf("ring holds %d bytes after reopening, over its %d", got, tt.size)
			}
		})
	}
}

// Reopening with a smaller cap (the admin lowered ring_size) respects it.
func TestRingShrinks(t *testing.T) {
	dir := t.TempDir()
	r, _ := OpenRing(dir, 64<<10)
	for i := 0; i < 1000; i++ {
		fmt.Fprintf(r, "%06d %s\n", i, strings.Repeat("y", 50))
	}
	r.Close()
	r, err := OpenRing(dir, 8<<10)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(r, "after\n")
	r.Close()
	if cur, _ := os.Stat(filepath.Join(dir, CurrentFile)); cur.Size() > 4<<10 {
		t.Errorf("current file is %d bytes, over half the new cap", cur.Size())
	}
	lines, _ := ReadRing(dir, 1)
	if len(lines) != 1 || string(lines[0]) != "after" {
		t.Errorf("ReadRing(1) = %q", lines)
	}
}

// Records logged before the ring is attached (early boot) reach it, and
// every record goes to both the console (text) and the ring (JSON), at one
// level.
func TestLogsEarlyRecordsAndLevel(t *testing.T) {
	var console bytes.Buffer
	logs := New(&syncWriter{w: &console})
	logs.SetLevel(config.LogInfo)
	logs.Logger.Info("mounting data partition", "label", "OUTPOST-DATA")
	logs.Logger.Debug("not logged at info")

	dir := t.TempDir()
	ring, err := OpenRing(dir, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if err := logs.AttachRing(ring); err != nil {
		t.Fatal(err)
	}
	logs.SetLevel(config.LogDebug)
	logs.Logger.Debug("now debug is logged", "n", 2)
	ring.Close()

	lines, err := ReadRing(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	var msgs []string
	for _, l := range lines {
		var rec struct{ Msg string }
		if err := json.Unmarshal(l, &rec); err != nil {
			t.Fatalf("ring record is not JSON: %q", l)
		}
		msgs = append(msgs, rec.Msg)
	}
	if strings.Join(msgs, "|") != "mounting data partition|now debug is logged" {
		t.Errorf("ring records: %q", msgs)
	}
	if !strings.Contains(console.String(), `msg="mounting data partition" label=OUTPOST-DATA`) ||
		!strings.Contains(console.String(), `msg="now debug is logged"`) || strings.Contains(console.String(), "not logged") {
		t.Errorf("console:\n%s", console.String())
	}
}

func TestEarlyBufferIsBounded(t *testing.T) {
	var d deferredWriter
	rec := []byte(strings.Repeat("z", 1000) + "\n")
	for i := 0; i < 3000; i++ {
		d.Write(rec)
	}
	if d.size > earlyLimit {
		t.Errorf("early buffer holds %d bytes", d.size)
	}
	var out bytes.Buffer
	if err := d.attach(&out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "early log records dropped") {
		t.Error("dropped records not reported")
	}
}

type syncWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
