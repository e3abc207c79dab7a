package disk

import (
	"bytes"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestGUIDEncoding(t *testing.T) {
	tests := []struct {
		name string
		got  []byte
		want string
	}{
		{"ESP", typeESP, "28732ac11ff8d211ba4b00a0c93ec93b"},
		{"Linux filesystem", typeLinuxFS, "af3dc60f838472478e793d69d8477de4"},
	}
	for _, tt := range tests {
		if hex.EncodeToString(tt.got) != tt.want {
			t.Errorf("%s: %x, want %s", tt.name, tt.got, tt.want)
		}
	}
}

func TestLayoutAlignment(t *testing.T) {
	tests := []struct{ boot, data int }{{96, 256}, {128, 512}}
	for _, tt := range tests {
		l := Layout{BootMiB: tt.boot, DataMiB: tt.data}
		parts := l.Partitions()
		for i, p := range parts {
			if p.Offset%mib != 0 {
				t.Errorf("%+v: partition %d not MiB-aligned", tt, i)
			}
			if i > 0 && p.Offset != parts[i-1].Offset+parts[i-1].Bytes {
				t.Errorf("%+v: gap before partition %d", tt, i)
			}
		}
		if parts[0].Bytes != parts[1].Bytes {
			t.Errorf("%+v: the two boot slots differ in size", tt)
		}
		if got, want := l.Size(), int64(2+2*tt.boot+tt.data)*mib; got != want {
			t.Errorf("%+v: size %d, want %d", tt, got, want)
		}
	}
}

// TestGPTReadBySfdisk checks the table (CRCs, backup header, names) with
// util-linux's sfdisk when it is installed.
func TestGPTReadBySfdisk(t *testing.T) {
	if _, err := exec.LookPath("sfdisk"); err != nil {
		t.Skip("sfdisk not installed")
	}
	l := Layout{Seed: "test", BootMiB: 32, DataMiB: 16}
	path := filepath.Join(t.TempDir(), "disk.img")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(l.Size()); err != nil {
		t.Fatal(err)
	}
	if _, err := l.writeGPT(f, l.Partitions()); err != nil {
		t.Fatal(err)
	}
	f.Close()
	out, err := exec.Command("sfdisk", "--dump", path).CombinedOutput()
	if err != nil {
		t.Fatalf("sfdisk: %v\n%s", err, out)
	}
	for _, want := range []string{"label: gpt", `name="OUTPOST-BOOT"`, `name="OUTPOST-BOOT-B"`, `name="OUTPOST-DATA"`, "start=        2048"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("sfdisk --dump lacks %q:\n%s", want, out)
		}
	}
	if bytes.Contains(out, []byte("corrupt")) {
		t.Errorf("sfdisk: %s", out)
	}
}
