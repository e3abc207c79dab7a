package origin

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/outpost-appliance/outpost/peerdist/pccrc"
)

// The cache directory holds one namespace per (served directory, server
// secret): <cache>/<16 hex digits>/, with a NAMESPACE file saying which
// directory it belongs to. Inside, one entry per (file path, content
// information version): <2 hex>/<32 hex>.v1|.v2, named by a digest of the
// path. An entry records the stamp of the file version it describes; a
// changed file simply has a stale entry, replaced when it is hashed again.
//
// Entry layout (little-endian):
//
//	magic     8  "OPORGCI\x01"
//	version   1  content information version (1 or 2)
//	secretID 16  which server secret made it
//	stamp    40  dev, inode, size, mtime ns, ctime ns of the file version
//	pathLen   2  then the path, relative to the served directory
//	ciLen     4  then the content information (wire form, whole file)
//	sha256   32  of everything before
//
// Entries are written to a temporary file and renamed into place, so a
// crash leaves either the old entry or the new one; anything that fails
// the checks on reading is deleted and recomputed.
const (
	entryMagic     = "OPORGCI\x01"
	entryFixedSize = len(entryMagic) + 1 + 16 + stampSize + 2 + 4 + sha256.Size
	tempPrefix     = ".tmp-"
	// staleTempAge: temporary files older than this were left by a crash
	// (a live writer renames within seconds).
	staleTempAge = time.Hour
)

type diskCache struct {
	dir      string // the namespace directory
	secretID [16]byte
}

var (
	errNotCached   = errors.New("not cached")
	errStaleEntry  = errors.New("cache entry is for another version of the file")
	errDamaged     = errors.New("damaged cache entry")
	errInsideServe = errors.New("the cache directory must not lie inside the served directory")
)

// openDiskCache creates (0700) and returns the namespace of servedDir and
// secret under cacheDir.
func openDiskCache(cacheDir, servedDir string, secret []byte) (*diskCache, error) {
	abs, err := filepath.Abs(cacheDir)
	if err != nil {
		return nil, fmt.Errorf("origin: cache directory: %w", err)
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, fmt.Errorf("origin: cache directory (set another with --cache-dir): %w", err)
	}
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		abs = real
	}
	if within(abs, servedDir) {
		return nil, fmt.Errorf("origin: cache directory %s: %w %s", abs, errInsideServe, servedDir)
	}
	d := &diskCache{secretID: secretID(secret)}
	ns := sha256.Sum256(append(append([]byte(servedDir), 0), d.secretID[:]...))
	d.dir = filepath.Join(abs, hex.EncodeToString(ns[:8]))
	if err := os.MkdirAll(d.dir, 0o700); err != nil {
		return nil, fmt.Errorf("origin: cache directory: %w", err)
	}
	note := filepath.Join(d.dir, "NAMESPACE")
	if _, err := os.Stat(note); err != nil {
		text := fmt.Sprintf("content information computed by `outpost origin` for the files of\n%s\n(one server secret; safe to delete)\n", servedDir)
		if err := writeAtomic(note, []byte(text)); err != nil {
			return nil, fmt.Errorf("origin: cache directory: %w", err)
		}
	}
	return d, nil
}

// within reports whether path is dir or lies below it.
func within(path, dir string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}

// secretID names a server secret without revealing it.
func secretID(secret []byte) [16]byte {
	sum := sha256.Sum256(append([]byte("outpost origin secret id\x00"), secret...))
	return [16]byte(sum[:16])
}

func (d *diskCache) path(rel string, v pccrc.Version) string {
	sum := sha256.Sum256([]byte(rel))
	name := hex.EncodeToString(sum[:16])
	return filepath.Join(d.dir, name[:2], fmt.Sprintf("%s.v%d", name, v))
}

// load returns the cached content information of rel for the file
// version st: errNotCached, errStaleEntry, or errDamaged (the entry has
// been removed) when there is none to use.
func (d *diskCache) load(rel string, v pccrc.Version, st stamp) (*entry, error) {
	p := d.path(rel, v)
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, errNotCached
	}
	if err != nil {
		return nil, fmt.Errorf("origin: cache entry %s: %w", p, err)
	}
	defer f.Close()
	// The stamp comes first: a stale entry of a large file is not read.
	head := make([]byte, len(entryMagic)+1+16+stampSize)
	if _, err := f.ReadAt(head, 0); err == nil && string(head[:8]) == entryMagic && parseStamp(head[25:]) != st {
		return nil, errStaleEntry
	}
	raw, err := io.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("origin: cache entry %s: %w", p, err)
	}
	e, err := decodeEntry(raw, rel, v, d.secretID)
	if err != nil {
		os.Remove(p)
		return nil, fmt.Errorf("origin: cache entry %s: %w: %v", p, errDamaged, err)
	}
	if e.stamp != st {
		return nil, errStaleEntry
	}
	return e, nil
}

func decodeEntry(raw []byte, rel string, v pccrc.Version, id [16]byte) (*entry, error) {
	if len(raw) < entryFixedSize {
		return nil, errors.New("short")
	}
	body, sum := raw[:len(raw)-sha256.Size], raw[len(raw)-sha256.Size:]
	if got := sha256.Sum256(body); !bytes.Equal(got[:], sum) {
		return nil, errors.New("checksum mismatch")
	}
	if string(body[:8]) != entryMagic {
		return nil, errors.New("bad magic")
	}
	b := body[8:]
	if pccrc.Version(b[0]) != v || !bytes.Equal(b[1:17], id[:]) {
		return nil, errors.New("version or secret mismatch")
	}
	st := parseStamp(b[17:])
	b = b[17+stampSize:]
	n := int(binary.LittleEndian.Uint16(b))
	if len(b) < 2+n+4 || string(b[2:2+n]) != rel {
		return nil, errors.New("path mismatch")
	}
	b = b[2+n:]
	ciLen := int(binary.LittleEndian.Uint32(b))
	if len(b) != 4+ciLen {
		return nil, errors.New("length mismatch")
	}
	return newEntry(st, v, b[4:])
}

// store writes the entry of rel atomically.
func (d *diskCache) store(rel string, e *entry) error {
	buf := make([]byte, 0, entryFixedSize+len(rel)+len(e.raw))
	buf = append(buf, entryMagic...)
	buf = append(buf, byte(e.version))
	buf = append(buf, d.secretID[:]...)
	buf = e.stamp.append(buf)
	buf = binary.LittleEndian.AppendUint16(buf, uint16(len(rel)))
	buf = append(buf, rel...)
	buf = binary.LittleEndian.AppendUint32(buf, uint32(len(e.raw)))
	buf = append(buf, e.raw...)
	sum := sha256.Sum256(buf)
	buf = append(buf, sum[:]...)
	p := d.path(rel, e.version)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return fmt.Errorf("origin: cache: %w", err)
	}
	if err := writeAtomic(p, buf); err != nil {
		return fmt.Errorf("origin: cache: %w", err)
	}
	return nil
}

// writeAtomic writes data to path (0600) through a synced temporary file
// in the same directory and a rename.
func writeAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), tempPrefix+"*")
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}

// collect removes, once at start, what the cache no longer needs: entries
// of files that are gone from the served directory, entries of paths a
// file can no longer be served under, and temporary files a crash left.
// Stale entries of files that still exist are replaced when they are
// hashed again.
func (d *diskCache) collect(ctx context.Context, root *os.Root, log *slog.Logger) {
	removed := 0
	err := filepath.WalkDir(d.dir, func(p string, de fs.DirEntry, err error) error {
		if err != nil || ctx.Err() != nil {
			return ctx.Err()
		}
		if de.IsDir() || de.Name() == "NAMESPACE" {
			return nil
		}
		if strings.HasPrefix(de.Name(), tempPrefix) {
			if fi, err := de.Info(); err == nil && time.Since(fi.ModTime()) > staleTempAge {
				if os.Remove(p) == nil {
					removed++
				}
			}
			return nil
		}
		rel, ok := entryPath(p)
		if !ok {
			return nil
		}
		if _, err := root.Stat(rel); errors.Is(err, fs.ErrNotExist) || (err == nil && !servable(rel)) {
			if os.Remove(p) == nil {
				removed++
			}
		}
		return nil
	})
	if err != nil && ctx.Err() == nil {
		log.Warn("origin: cleaning the cache directory", "dir", d.dir, "err", err)
	}
	if removed > 0 {
		log.Info("origin: removed unused cache entries", "dir", d.dir, "count", removed)
	}
}

// entryPath reads the file path recorded in the entry at p.
func entryPath(p string) (string, bool) {
	f, err := os.Open(p)
	if err != nil {
		return "", false
	}
	defer f.Close()
	head := make([]byte, 8+1+16+stampSize+2)
	if _, err := f.ReadAt(head, 0); err != nil || string(head[:8]) != entryMagic {
		return "", false
	}
	n := int(binary.LittleEndian.Uint16(head[len(head)-2:]))
	name := make([]byte, n)
	if _, err := f.ReadAt(name, int64(len(head))); err != nil {
		return "", false
	}
	return string(name), true
}

// servable reports whether rel is a path cleanPath can produce.
func servable(rel string) bool {
	got, _, err := cleanPath("/" + rel)
	return err == nil && got == rel
}
