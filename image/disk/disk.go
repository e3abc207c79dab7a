// Package disk lays out the appliance's flashable images: a partition
// table (GPT for UEFI boards, MBR for the Raspberry Pi) holding the boot
// partition (FAT, made with dosfstools and filled with mtools), an empty
// second boot slot for A/B updates, and the data partition (ext4, made
// with e2fsprogs). Every identifier and timestamp is derived from fixed
// inputs so that the same inputs give byte-identical images.
package disk

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
	"unicode/utf16"
)

// Labels of the filesystems. A FAT label holds at most 11 characters, so
// the boot filesystem's label is OUTPOSTBOOT; the partition (GPT name) is
// OUTPOST-BOOT.
const (
	BootPartName = "OUTPOST-BOOT"
	BootFATLabel = "OUTPOSTBOOT"
	SlotBName    = "OUTPOST-BOOT-B"
	DataLabel    = "OUTPOST-DATA"
)

// Table is the partition table kind.
type Table int

// Partition tables.
const (
	GPT Table = iota // UEFI PCs and QEMU
	MBR              // Raspberry Pi boot ROMs read MBR only (Pi 3)
)

// Layout describes one image.
type Layout struct {
	Table    Table
	Seed     string    // makes the GUIDs, serials and ext4 UUID (the board name)
	BootTree string    // host directory copied into the boot filesystem
	BootMiB  int       // each boot slot
	DataMiB  int       // data partition
	Time     time.Time // every timestamp in the image
}

const (
	sector = 512
	mib    = 1 << 20
)

// Partition is where a partition lies, in bytes.
type Partition struct {
	Name          string
	Offset, Bytes int64
}

// Partitions returns the partitions of l in disk order: the boot slot, the
// second boot slot, the data partition. The first MiB holds the table.
func (l Layout) Partitions() []Partition {
	boot, data := int64(l.BootMiB)*mib, int64(l.DataMiB)*mib
	return []Partition{
		{BootPartName, mib, boot},
		{SlotBName, mib + boot, boot},
		{DataLabel, mib + 2*boot, data},
	}
}

// Size is the image size: partitions plus a MiB at each end (the backup
// GPT lives in the last one).
func (l Layout) Size() int64 {
	p := l.Partitions()
	return p[2].Offset + p[2].Bytes + mib
}

// Build writes the image to out, using tmp for the filesystem images.
func Build(ctx context.Context, l Layout, out, tmp string) error {
	parts := l.Partitions()
	bootImg := filepath.Join(tmp, "boot.fat")
	if err := makeFAT(ctx, l, bootImg, parts[0].Bytes); err != nil {
		return err
	}
	dataImg := filepath.Join(tmp, "data.ext4")
	if err := makeExt4(ctx, l, dataImg, parts[2].Bytes); err != nil {
		return err
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Truncate(l.Size()); err != nil {
		return err
	}
	var table []byte
	switch l.Table {
	case GPT:
		table, err = l.writeGPT(f, parts)
	case MBR:
		table = l.mbr(parts)
		_, err = f.WriteAt(table, 0)
	}
	if err != nil {
		return fmt.Errorf("disk: partition table: %w", err)
	}
	for _, p := range []struct {
		img string
		at  int64
	}{{bootImg, parts[0].Offset}, {dataImg, parts[2].Offset}} {
		if err := copySparse(f, p.img, p.at); err != nil {
			return fmt.Errorf("disk: %w", err)
		}
	}
	return f.Close()
}

// makeFAT makes the boot filesystem and copies BootTree into it with
// every timestamp set to l.Time (mcopy -m keeps the staged files' times).
func makeFAT(ctx context.Context, l Layout, img string, size int64) error {
	os.Remove(img)
	serial := fmt.Sprintf("%08x", binary.LittleEndian.Uint32(l.id("fat-serial")))
	if err := run(ctx, nil, "mkfs.vfat", "-F", "32", "-n", BootFATLabel, "-i", serial, "--invariant",
		"-C", img, fmt.Sprint(size/1024)); err != nil {
		return err
	}
	entries, err := os.ReadDir(l.BootTree)
	if err != nil {
		return err
	}
	if err := filepath.WalkDir(l.BootTree, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Chtimes(p, l.Time, l.Time)
	}); err != nil {
		return err
	}
	env := []string{"MTOOLS_SKIP_CHECK=1"}
	for _, e := range entries { // sorted by name: directory entries in a fixed order
		src := filepath.Join(l.BootTree, e.Name())
		if err := run(ctx, env, "mcopy", "-i", img, "-s", "-m", "-Q", src, "::"+e.Name()); err != nil {
			return err
		}
	}
	return nil
}

// makeExt4 formats the data partition. E2FSPROGS_FAKE_TIME fixes the
// superblock times; -U and hash_seed fix what would be random.
func makeExt4(ctx context.Context, l Layout, img string, size int64) error {
	os.Remove(img)
	f, err := os.Create(img)
	if err != nil {
		return err
	}
	if err := f.Truncate(size); err != nil {
		f.Close()
		return err
	}
	f.Close()
	uuid := formatUUID(l.id("ext4-uuid"))
	seed := formatUUID(l.id("ext4-hash-seed"))
	return run(ctx, []string{fmt.Sprintf("E2FSPROGS_FAKE_TIME=%d", l.Time.Unix())}, "mkfs.ext4", "-q", "-F",
		"-L", DataLabel, "-U", uuid, "-m", "1",
		"-E", "hash_seed="+seed+",lazy_itable_init=0,lazy_journal_init=0,root_owner=0:0", img)
}

// id derives 16 stable bytes for one purpose, shaped as a version 4 UUID.
func (l Layout) id(purpose string) []byte {
	sum := sha256.Sum256([]byte("outpost-image\x00" + l.Seed + "\x00" + purpose))
	b := sum[:16]
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return b
}

func formatUUID(b []byte) string {
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// guid encodes a textual GUID the way GPT stores it (the first three
// fields little-endian).
func guid(s string) []byte {
	var b [16]byte
	h := strings.ReplaceAll(s, "-", "")
	for i := 0; i < 16; i++ {
		fmt.Sscanf(h[2*i:2*i+2], "%02x", &b[i])
	}
	for _, r := range [][2]int{{0, 4}, {4, 6}, {6, 8}} {
		for i, j := r[0], r[1]-1; i < j; i, j = i+1, j-1 {
			b[i], b[j] = b[j], b[i]
		}
	}
	return b[:]
}

// GPT partition types.
var (
	typeESP       = guid("C12A7328-F81F-11D2-BA4B-00A0C93EC93B")
	typeBasicData = guid("EBD0A0A2-B9E5-4433-87C0-68B6B72699C7")
	typeLinuxFS   = guid("0FC63DAF-8483-4772-8E79-3D69D8477DE4")
)

const gptEntries, gptEntrySize = 128, 128

// writeGPT writes the protective MBR, the primary and the backup GPT.
func (l Layout) writeGPT(f *os.File, parts []Partition) ([]byte, error) {
	total := l.Size() / sector
	entries := make([]byte, gptEntries*gptEntrySize)
	types := [][]byte{typeESP, typeBasicData, typeLinuxFS}
	for i, p := range parts {
		e := entries[i*gptEntrySize:]
		copy(e[0:], types[i])
		copy(e[16:], l.id("part-"+p.Name))
		binary.LittleEndian.PutUint64(e[32:], uint64(p.Offset/sector))
		binary.LittleEndian.PutUint64(e[40:], uint64((p.Offset+p.Bytes)/sector-1))
		for j, u := range utf16.Encode([]rune(p.Name)) {
			binary.LittleEndian.PutUint16(e[56+2*j:], u)
		}
	}
	entriesCRC := crc32.ChecksumIEEE(entries)
	header := func(current, backup, entriesLBA int64) []byte {
		h := make([]byte, sector)
		copy(h, "EFI PART")
		binary.LittleEndian.PutUint32(h[8:], 0x00010000)
		binary.LittleEndian.PutUint32(h[12:], 92)
		binary.LittleEndian.PutUint64(h[24:], uint64(current))
		binary.LittleEndian.PutUint64(h[32:], uint64(backup))
		binary.LittleEndian.PutUint64(h[40:], 34)
		binary.LittleEndian.PutUint64(h[48:], uint64(total-34))
		copy(h[56:], l.id("disk-guid"))
		binary.LittleEndian.PutUint64(h[72:], uint64(entriesLBA))
		binary.LittleEndian.PutUint32(h[80:], gptEntries)
		binary.LittleEndian.PutUint32(h[84:], gptEntrySize)
		binary.LittleEndian.PutUint32(h[88:], entriesCRC)
		binary.LittleEndian.PutUint32(h[16:], crc32.ChecksumIEEE(h[:92]))
		return h
	}
	pmbr := make([]byte, sector)
	pe := pmbr[446:]
	pe[4] = 0xEE
	binary.LittleEndian.PutUint32(pe[8:], 1)
	binary.LittleEndian.PutUint32(pe[12:], uint32(min(total-1, 0xFFFFFFFF)))
	pmbr[510], pmbr[511] = 0x55, 0xAA
	writes := []struct {
		at   int64
		data []byte
	}{
		{0, pmbr},
		{1, header(1, total-1, 2)},
		{2, entries},
		{total - 33, entries},
		{total - 1, header(total-1, 1, total-33)},
	}
	for _, w := range writes {
		if _, err := f.WriteAt(w.data, w.at*sector); err != nil {
			return nil, err
		}
	}
	return pmbr, nil
}

// mbr is a DOS partition table: FAT32 (LBA) boot slots, Linux data.
func (l Layout) mbr(parts []Partition) []byte {
	m := make([]byte, sector)
	copy(m[440:], l.id("mbr-signature")[:4])
	types := []byte{0x0C, 0x0C, 0x83}
	for i, p := range parts {
		e := m[446+16*i:]
		if i == 0 {
			e[0] = 0x80 // active
		}
		e[1], e[2], e[3] = 0xFE, 0xFF, 0xFF // CHS unused: LBA only
		e[4] = types[i]
		e[5], e[6], e[7] = 0xFE, 0xFF, 0xFF
		binary.LittleEndian.PutUint32(e[8:], uint32(p.Offset/sector))
		binary.LittleEndian.PutUint32(e[12:], uint32(p.Bytes/sector))
	}
	m[510], m[511] = 0x55, 0xAA
	return m
}

// copySparse copies img into f at offset, skipping all-zero blocks so the
// output stays sparse.
func copySparse(f *os.File, img string, offset int64) error {
	in, err := os.Open(img)
	if err != nil {
		return err
	}
	defer in.Close()
	buf := make([]byte, 64<<10)
	zero := make([]byte, len(buf))
	for pos := int64(0); ; {
		n, err := io.ReadFull(in, buf)
		if n > 0 && !bytes.Equal(buf[:n], zero[:n]) {
			if _, werr := f.WriteAt(buf[:n], offset+pos); werr != nil {
				return werr
			}
		}
		pos += int64(n)
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("copy %s: %w", img, err)
		}
	}
}

func run(ctx context.Context, env []string, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
