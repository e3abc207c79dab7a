// Package initramfs writes reproducible initramfs archives: cpio "newc"
// with entries sorted by path, every timestamp set to one fixed time,
// owner root, and parent directories added implicitly, gzip-compressed
// with a header that carries no name or time.
package initramfs

import (
	"bufio"
	"compress/gzip"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Entry is one file in the archive.
type Entry struct {
	Mode   uint32 // permission bits and the file type (S_IF*)
	Source string // host file with the contents (regular files)
	Data   []byte // contents, when Source is empty
	Target string // symlink target
	Major  uint32 // device nodes
	Minor  uint32
}

// File type bits of a cpio mode.
const (
	typeDir  = 0o040000
	typeReg  = 0o100000
	typeLink = 0o120000
	typeChr  = 0o020000
)

// Archive is the set of entries, by path without a leading slash.
type Archive struct {
	entries map[string]Entry
}

// New returns an empty archive.
func New() *Archive { return &Archive{entries: map[string]Entry{}} }

// File adds a regular file copied from src.
func (a *Archive) File(name, src string, perm uint32) {
	a.add(name, Entry{Mode: typeReg | perm, Source: src})
}

// Bytes adds a regular file with contents data.
func (a *Archive) Bytes(name string, data []byte, perm uint32) {
	a.add(name, Entry{Mode: typeReg | perm, Data: data})
}

// Dir adds a directory.
func (a *Archive) Dir(name string, perm uint32) { a.add(name, Entry{Mode: typeDir | perm}) }

// Symlink adds a symbolic link.
func (a *Archive) Symlink(name, target string) {
	a.add(name, Entry{Mode: typeLink | 0o777, Target: target})
}

// CharDev adds a character device node, which needs no mknod on the host.
func (a *Archive) CharDev(name string, perm, major, minor uint32) {
	a.add(name, Entry{Mode: typeChr | perm, Major: major, Minor: minor})
}

// Tree adds the regular files and directories under the host directory src
// at name (file modes kept, other metadata normalised).
func (a *Archive) Tree(name, src string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		dst := path.Join(name, filepath.ToSlash(rel))
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			a.Dir(dst, 0o755)
		case info.Mode().IsRegular():
			a.File(dst, p, uint32(info.Mode().Perm()))
		default:
			return fmt.Errorf("initramfs: %s: not a regular file or directory", p)
		}
		return nil
	})
}

func (a *Archive) add(name string, e Entry) {
	name = strings.TrimPrefix(path.Clean("/"+name), "/")
	a.entries[name] = e
	for dir := path.Dir(name); dir != "." && dir != "/"; dir = path.Dir(dir) {
		if _, ok := a.entries[dir]; !ok {
			a.entries[dir] = Entry{Mode: typeDir | 0o755}
		}
	}
}

// Names lists the entries' paths in archive order.
func (a *Archive) Names() []string {
	names := make([]string, 0, len(a.entries))
	for n := range a.entries {
		names = append(names, n)
	}
	sort.Strings(names) // a parent sorts before its children
	return names
}

// WriteCPIO writes the archive as uncompressed newc cpio with every
// timestamp set to mtime.
func (a *Archive) WriteCPIO(w io.Writer, mtime time.Time) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	ino := uint32(1)
	for _, name := range a.Names() {
		e := a.entries[name]
		var data []byte
		var err error
		switch {
		case e.Mode&0o170000 == typeLink:
			data = []byte(e.Target)
		case e.Source != "":
			if data, err = os.ReadFile(e.Source); err != nil {
				return fmt.Errorf("initramfs: %s: %w", name, err)
			}
		default:
			data = e.Data
		}
		nlink := uint32(1)
		if e.Mode&0o170000 == typeDir {
			nlink = 2
		}
		if err := writeRecord(bw, ino, e.Mode, nlink, uint32(mtime.Unix()), e.Major, e.Minor, name, data); err != nil {
			return err
		}
		ino++
	}
	if err := writeRecord(bw, 0, 0, 1, 0, 0, 0, "TRAILER!!!", nil); err != nil {
		return err
	}
	return bw.Flush()
}

func writeRecord(w io.Writer, ino, mode, nlink, mtime, major, minor uint32, name string, data []byte) error {
	hdr := fmt.Sprintf("070701%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x",
		ino, mode, 0, 0, nlink, mtime, len(data), 0, 0, major, minor, len(name)+1, 0)
	if _, err := io.WriteString(w, hdr+name+"\x00"+pad(len(hdr)+len(name)+1)); err != nil {
		return err
	}
	if _, err := w.Write(data); err != nil {
		return err
	}
	_, err := io.WriteString(w, pad(len(data)))
	return err
}

func pad(n int) string { return strings.Repeat("\x00", (4-n%4)%4) }

// WriteGzip writes the cpio archive gzip-compressed (best compression; the
// kernel decompresses gzip fastest under emulation).
func (a *Archive) WriteGzip(w io.Writer, mtime time.Time) error {
	zw, err := gzip.NewWriterLevel(w, gzip.BestCompression)
	if err != nil {
		return err
	}
	// Header left without name and time so the output depends only on content.
	if err := a.WriteCPIO(zw, mtime); err != nil {
		return err
	}
	return zw.Close()
}
