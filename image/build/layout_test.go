package build

import (
	"context"
	"encoding/binary"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestLayout builds boards and checks their partition tables and the
// files on the boot partition (the rpi image cannot boot here: QEMU 7.2
// has no Pi 4/5 machine, so its layout is what can be checked).
func TestLayout(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root (apt-get download of the kernel)")
	}
	for _, tool := range []string{"apt-get", "dpkg-deb", "depmod", "mkfs.vfat", "mcopy", "mdir", "mkfs.ext4"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (.ci/run installs it)", tool)
		}
	}
	repo, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		board   string
		gpt     bool
		files   []string // on the boot partition
		cmdline string   // in the loader entry or cmdline.txt
	}{
		{"qemu-amd64", true, []string{"EFI/BOOT/BOOTX64.EFI", "loader/loader.conf", "loader/entries/outpost-a.conf", "vmlinuz", "initramfs.cpio.gz", "outpost.toml"}, "console=ttyS0"},
		{"rpi", false, []string{"config.txt", "cmdline.txt", "vmlinuz", "initramfs.cpio.gz", "outpost.toml", "bootcode.bin", "start4.elf", "fixup4.dat",
			"bcm2710-rpi-3-b.dtb", "bcm2711-rpi-4-b.dtb", "bcm2712-rpi-5-b.dtb", "bcm2710-rpi-zero-2-w.dtb", "overlays"}, "console=serial0,115200"},
	}
	t.Setenv("MTOOLS_SKIP_CHECK", "1")
	for _, tt := range tests {
		t.Run(tt.board, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			r, err := Board(ctx, Options{Repo: repo, Out: t.TempDir(), Cache: filepath.Join(repo, "build", "cache"), Version: "layout",
				Time: time.Unix(1700000000, 0), Log: slog.New(slog.NewTextHandler(io.Discard, nil))}, tt.board)
			if err != nil {
				t.Fatal(err)
			}
			f, err := os.Open(r.Disk)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			head := make([]byte, 1024)
			if _, err := io.ReadFull(f, head); err != nil {
				t.Fatal(err)
			}
			if tt.gpt {
				if head[446+4] != 0xEE || string(head[512:520]) != "EFI PART" {
					t.Fatal("no protective MBR and GPT header")
				}
			} else {
				for i, want := range []byte{0x0C, 0x0C, 0x83} {
					if got := head[446+16*i+4]; got != want {
						t.Errorf("MBR partition %d: type %#x, want %#x", i+1, got, want)
					}
				}
				if head[446] != 0x80 || binary.LittleEndian.Uint32(head[446+8:]) != 2048 {
					t.Error("MBR partition 1 is not active at 1 MiB")
				}
			}
			fat := r.Disk + "@@1M" // the boot partition starts at 1 MiB
			out, err := exec.CommandContext(ctx, "mdir", "-i", fat, "-/", "-b", "::").CombinedOutput()
			if err != nil {
				t.Fatalf("mdir: %v\n%s", err, out)
			}
			for _, want := range tt.files {
				if !strings.Contains(string(out), "::/"+want) {
					t.Errorf("boot partition lacks %s", want)
				}
			}
			label, _ := exec.CommandContext(ctx, "mlabel", "-i", fat, "-s", "::").CombinedOutput()
			if !strings.Contains(string(label), "OUTPOSTBOOT") {
				t.Errorf("boot filesystem label: %s", label)
			}
			entry := "::/loader/entries/outpost-a.conf"
			if !tt.gpt {
				entry = "::/cmdline.txt"
			}
			text, err := exec.CommandContext(ctx, "mtype", "-i", fat, entry).CombinedOutput()
			if err != nil || !strings.Contains(string(text), tt.cmdline) {
				t.Errorf("%s: %s (%v)", entry, text, err)
			}
		})
	}
}
