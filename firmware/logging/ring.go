// Package logging sets up Outpost's structured logs (log/slog): text on the
// console, and JSON lines in a bounded ring on the data partition that
// survives reboots, so an admin can read what happened before a power cut
// or a watchdog reset.
package logging

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Ring file names, oldest last: the ring is a pair of files, each at most
// half the ring's size. When the current file would grow past its half, it
// becomes the previous one (replacing it) and a new current file starts.
// Lines are never split across the two.
const (
	CurrentFile  = "outpost.log"
	PreviousFile = "outpost.log.1"
)

// syncEvery bounds how much of the log a power cut can lose without paying
// an fsync per line on an SD card.
const syncEvery = 5 * time.Second

// Ring is a size-capped log kept in a directory. It is safe for concurrent
// use; each Write should be one whole record (slog handlers write one
// record per call).
type Ring struct {
	dir      string
	half     int64
	mu       sync.Mutex
	f        *os.File
	size     int64
	dirty    bool
	lastSync time.Time
}

// OpenRing opens (creating it if needed) the ring in dir, capped at size
// bytes in all, and appends to what is there from before.
func OpenRing(dir string, size int64) (*Ring, error) {
	if size < 2 {
		return nil, fmt.Errorf("logging: ring size %d is too small", size)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("logging: ring: %w", err)
	}
	r := &Ring{dir: dir, half: size / 2, lastSync: time.Now()}
	if err := r.open(); err != nil {
		return nil, err
	}
	// A ring written with a larger cap before: start afresh within this one.
	if r.size > r.half {
		if err := r.rotate(); err != nil {
			return nil, err
		}
	}
	return r, nil
}

func (r *Ring) open() error {
	f, err := os.OpenFile(filepath.Join(r.dir, CurrentFile), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("logging: ring: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("logging: ring: %w", err)
	}
	r.f, r.size = f, st.Size()
	return nil
}

// rotate turns the current file into the previous one and starts a new
// current file.
func (r *Ring) rotate() error {
	if err := r.f.Sync(); err != nil {
		return fmt.Errorf("logging: ring: %w", err)
	}
	r.f.Close()
	if err := os.Rename(filepath.Join(r.dir, CurrentFile), filepath.Join(r.dir, PreviousFile)); err != nil {
		return fmt.Errorf("logging: ring: %w", err)
	}
	return r.open()
}

// Write appends one record. A record longer than half the ring is cut to
// fit (and ends with a newline).
func (r *Ring) Write(p []byte) (int, error) {
	n := len(p)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.f == nil {
		return 0, errors.New("logging: ring is closed")
	}
	if int64(len(p)) > r.half {
		p = append(p[:r.half-1:r.half-1], '\n')
	}
	if r.size+int64(len(p)) > r.half {
		if err := r.rotate(); err != nil {
			return 0, err
		}
	}
	w, err := r.f.Write(p)
	r.size += int64(w)
	r.dirty = true
	if err != nil {
		return 0, fmt.Errorf("logging: ring: %w", err)
	}
	if time.Since(r.lastSync) >= syncEvery {
		r.syncLocked()
	}
	return n, nil
}

func (r *Ring) syncLocked() {
	if r.dirty && r.f != nil {
		_ = r.f.Sync() // best effort: logging must not fail the caller
		r.dirty = false
	}
	r.lastSync = time.Now()
}

// Sync flushes the ring to the disk (before a reboot or power-off).
func (r *Ring) Sync() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.syncLocked()
}

// Close syncs and closes the ring; later writes fail.
func (r *Ring) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.f == nil {
		return nil
	}
	r.syncLocked()
	err := r.f.Close()
	r.f = nil
	return err
}

// ReadRing returns the records kept in dir, oldest first, at most the last
// max of them (all when max <= 0). It reads files only, so it works on a
// ring another process is writing.
func ReadRing(dir string, max int) ([][]byte, error) {
	var lines [][]byte
	for _, name := range []string{PreviousFile, CurrentFile} {
		f, err := os.Open(filepath.Join(dir, name))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("logging: read ring: %w", err)
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 16<<20)
		for sc.Scan() {
			if line := bytes.TrimSpace(sc.Bytes()); len(line) > 0 {
				lines = append(lines, bytes.Clone(line))
			}
		}
		f.Close()
		if err := sc.Err(); err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("logging: read ring %s: %w", name, err)
		}
	}
	if max > 0 && len(lines) > max {
		lines = lines[len(lines)-max:]
	}
	return lines, nil
}
