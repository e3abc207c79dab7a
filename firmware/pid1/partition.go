package pid1

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/u-root/u-root/pkg/mount"
	"github.com/u-root/u-root/pkg/mount/block"
)

// Partition labels the image builder gives the appliance's filesystems.
// A FAT label holds at most 11 characters, so the boot filesystem is
// labelled OUTPOSTBOOT (see fatLabel); OUTPOST-BOOT is its GPT partition
// name.
const (
	BootLabel = "OUTPOST-BOOT" // FAT: loader, kernel, outpost.toml
	DataLabel = "OUTPOST-DATA" // ext4: the store, the log ring, the clock
)

// fatLabel is the form a label takes on a FAT filesystem: upper case, no
// hyphens, at most 11 characters (OUTPOST-BOOT → OUTPOSTBOOT).
func fatLabel(label string) string {
	l := strings.ToUpper(strings.ReplaceAll(label, "-", ""))
	return l[:min(len(l), 11)]
}

// Filesystem is a block device holding a filesystem with a label.
type Filesystem struct {
	Device string // /dev/sda2
	Type   string // "ext4" or "vfat"
	Label  string
}

// FindByLabel returns the block device whose filesystem has label.
// u-root's block package enumerates the devices; it does not read labels,
// so the ext2/3/4 and FAT superblocks are read here.
func FindByLabel(label string) (*Filesystem, error) {
	devs, err := block.GetBlockDevices()
	if err != nil {
		return nil, fmt.Errorf("pid1: list block devices: %w", err)
	}
	for _, d := range devs {
		fs, err := readLabel(d.DevicePath())
		if err == nil && (fs.Label == label || fs.Type == "vfat" && fs.Label == fatLabel(label)) {
			return fs, nil
		}
	}
	return nil, fmt.Errorf("pid1: no filesystem labelled %s", label)
}

// readLabel reads the filesystem type and label of a device.
func readLabel(dev string) (*Filesystem, error) {
	f, err := os.Open(dev)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	buf := make([]byte, 2048)
	if _, err := io.ReadFull(f, buf); err != nil {
		return nil, err
	}
	// ext2/3/4: superblock at 1024; magic at +56, volume name at +120.
	if binary.LittleEndian.Uint16(buf[1024+56:]) == 0xEF53 {
		return &Filesystem{Device: dev, Type: "ext4", Label: cString(buf[1024+120 : 1024+136])}, nil
	}
	// FAT: boot sector signature, then the extended BPB of FAT32 or of
	// FAT12/16 (label 11 bytes, padded with spaces).
	if buf[510] == 0x55 && buf[511] == 0xAA {
		if bytes.HasPrefix(buf[0x52:], []byte("FAT32")) {
			return &Filesystem{Device: dev, Type: "vfat", Label: strings.TrimRight(string(buf[0x47:0x52]), " ")}, nil
		}
		if bytes.HasPrefix(buf[0x36:], []byte("FAT1")) {
			return &Filesystem{Device: dev, Type: "vfat", Label: strings.TrimRight(string(buf[0x2B:0x36]), " ")}, nil
		}
	}
	return nil, errors.New("no ext or FAT filesystem")
}

func cString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// WaitForLabel looks for the filesystem until it appears or timeout
// passes (SD cards and USB sticks take a moment to enumerate).
func WaitForLabel(ctx context.Context, label string, timeout time.Duration) (*Filesystem, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		fs, err := FindByLabel(label)
		if err == nil {
			return fs, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w (waited %s)", err, timeout)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// MountFilesystem mounts fs on dir (created if needed) with flags
// (unix.MS_RDONLY for the boot partition).
func MountFilesystem(fs *Filesystem, dir string, flags uintptr) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("pid1: mount %s: %w", fs.Label, err)
	}
	data := ""
	if fs.Type == "vfat" {
		data = "utf8=1,shortname=mixed" // file names as an admin's PC wrote them
	}
	if _, err := mount.Mount(fs.Device, dir, fs.Type, data, flags); err != nil {
		return fmt.Errorf("pid1: mount %s (%s) on %s: %w", fs.Label, fs.Device, dir, err)
	}
	return nil
}

// hasBlockDevices reports whether any disk-like block device exists (not
// RAM disks or unused loop devices), to stop waiting early on machines
// booted without a disk.
func hasBlockDevices() bool {
	entries, err := os.ReadDir("/sys/class/block")
	if err != nil {
		return false
	}
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, "ram") {
			continue
		}
		if strings.HasPrefix(name, "loop") {
			if _, err := os.Stat(filepath.Join("/sys/class/block", name, "loop")); err != nil {
				continue // an unbound loop device
			}
		}
		return true
	}
	return false
}
