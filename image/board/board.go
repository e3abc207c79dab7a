// Package board reads the declarative board files under board/<name>/
// that tell the image builder which kernel, modules, disk layout and QEMU
// machine a board uses.
package board

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/pelletier/go-toml/v2"
)

// Board is one board/<name>/board.toml.
type Board struct {
	Name   string `toml:"-"`
	Dir    string `toml:"-"` // board/<name>
	Arch   string `toml:"arch"`
	Kernel Kernel `toml:"kernel"`
	Disk   Disk   `toml:"disk"`
	QEMU   QEMU   `toml:"qemu"`
}

// Kernel says where the kernel comes from and what it loads at boot.
type Kernel struct {
	Source  string   `toml:"source"`  // "debian" or "gomodule"
	Package string   `toml:"package"` // Debian meta package, or module@version
	Modules []string `toml:"modules"`
	Cmdline string   `toml:"cmdline"`
}

// Disk is the layout of the flashable image.
type Disk struct {
	Layout   string `toml:"layout"`   // "gpt-efi", "rpi-mbr" or "none"
	Loader   string `toml:"loader"`   // Debian package of the UEFI loader
	Firmware string `toml:"firmware"` // rpi: boot firmware module@version
	BootMiB  int    `toml:"boot_mib"`
	DataMiB  int    `toml:"data_mib"`
}

// QEMU is how the board boots under emulation; empty for hardware-only boards.
type QEMU struct {
	System    string   `toml:"system"`
	Machine   []string `toml:"machine"`
	MemoryMiB int      `toml:"memory_mib"`
}

// Load reads root/<name>/board.toml.
func Load(root, name string) (*Board, error) {
	dir := filepath.Join(root, name)
	data, err := os.ReadFile(filepath.Join(dir, "board.toml"))
	if err != nil {
		return nil, fmt.Errorf("board %s: %w", name, err)
	}
	var b Board
	dec := toml.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		return nil, fmt.Errorf("board %s: %w", name, err)
	}
	b.Name, b.Dir = name, dir
	if err := b.validate(); err != nil {
		return nil, fmt.Errorf("board %s: %w", name, err)
	}
	return &b, nil
}

func (b *Board) validate() error {
	switch {
	case b.Arch != "amd64" && b.Arch != "arm64":
		return fmt.Errorf("arch %q: want amd64 or arm64", b.Arch)
	case b.Kernel.Source != "debian" && b.Kernel.Source != "gomodule":
		return fmt.Errorf("kernel.source %q: want debian or gomodule", b.Kernel.Source)
	case b.Kernel.Package == "":
		return fmt.Errorf("kernel.package is empty")
	}
	switch b.Disk.Layout {
	case "none":
	case "gpt-efi", "rpi-mbr":
		if b.Disk.BootMiB < 32 || b.Disk.DataMiB < 16 {
			return fmt.Errorf("disk: boot_mib must be >= 32 and data_mib >= 16")
		}
	default:
		return fmt.Errorf("disk.layout %q: want gpt-efi, rpi-mbr or none", b.Disk.Layout)
	}
	return nil
}

// Names lists the boards under root, sorted.
func Names(root string) ([]string, error) {
	matches, err := filepath.Glob(filepath.Join(root, "*", "board.toml"))
	if err != nil {
		return nil, err
	}
	var names []string
	for _, m := range matches {
		names = append(names, filepath.Base(filepath.Dir(m)))
	}
	sort.Strings(names)
	return names, nil
}
