package origin

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"syscall"
	"time"
)

// stamp identifies one version of a file: the same path with a different
// stamp is different content. Device and inode tell a replaced file (a
// deploy tool's rename) from the old one; size, mtime and ctime tell an
// in-place change. ctime is set by the kernel on every write and cannot be
// set back, so a tool that restores an old mtime after writing (rsync -t,
// touch -d) still changes the stamp.
type stamp struct {
	Dev, Ino     uint64
	Size         int64
	Mtime, Ctime int64 // nanoseconds since the epoch
}

const stampSize = 40

func stampOf(fi fs.FileInfo) stamp {
	st := stamp{Size: fi.Size(), Mtime: fi.ModTime().UnixNano()}
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		st.Dev, st.Ino = uint64(sys.Dev), sys.Ino
		st.Ctime = time.Unix(int64(sys.Ctim.Sec), int64(sys.Ctim.Nsec)).UnixNano()
	}
	return st
}

func (st stamp) append(b []byte) []byte {
	b = binary.LittleEndian.AppendUint64(b, st.Dev)
	b = binary.LittleEndian.AppendUint64(b, st.Ino)
	b = binary.LittleEndian.AppendUint64(b, uint64(st.Size))
	b = binary.LittleEndian.AppendUint64(b, uint64(st.Mtime))
	return binary.LittleEndian.AppendUint64(b, uint64(st.Ctime))
}

func parseStamp(b []byte) stamp {
	return stamp{
		Dev: binary.LittleEndian.Uint64(b), Ino: binary.LittleEndian.Uint64(b[8:]),
		Size: int64(binary.LittleEndian.Uint64(b[16:])), Mtime: int64(binary.LittleEndian.Uint64(b[24:])),
		Ctime: int64(binary.LittleEndian.Uint64(b[32:])),
	}
}

// etag is the strong entity tag of this file version: a digest of the
// stamp, the same for the content and for its content information, so a
// client that got content information can send it in If-Range with its
// MissingDataRequest range requests (protocols.md §6).
func (st stamp) etag() string {
	sum := sha256.Sum256(st.append(nil))
	return `"` + hex.EncodeToString(sum[:8]) + `"`
}

func (st stamp) modTime() time.Time { return time.Unix(0, st.Mtime) }

// settleWait is how much longer the file must be left alone before it may
// be hashed (0: now). A write during hashing then always lands in a later
// timestamp tick than the stamp taken before reading, so it is seen.
func (st stamp) settleWait(now time.Time, minAge time.Duration) time.Duration {
	if minAge <= 0 {
		return 0
	}
	wait := time.Unix(0, st.Ctime).Add(minAge).Sub(now)
	// A ctime in the future (a skewed file server) waits one period at
	// most each time.
	return min(max(wait, 0), minAge)
}

// Errors of path resolution, mapped to HTTP statuses by ServeHTTP.
var (
	errBadPath   = errors.New("bad path")       // 400
	errHidden    = errors.New("hidden path")    // 404: dotfiles are never served
	errNotFound  = errors.New("not found")      // 404
	errForbidden = errors.New("forbidden")      // 403
	errIsDir     = errors.New("is a directory") // redirect to the slash form
)

// cleanPath turns a URL path (already percent-decoded) into a path
// relative to the served directory. Paths must be absolute; ".." is
// refused rather than resolved (a well-behaved client never sends it);
// a component starting with a dot is hidden (.git, .htpasswd, editors'
// temporary files). Empty components and "." are dropped. dirForm reports
// a trailing slash.
func cleanPath(urlPath string) (rel string, dirForm bool, err error) {
	if !strings.HasPrefix(urlPath, "/") || strings.ContainsRune(urlPath, 0) {
		return "", false, errBadPath
	}
	var parts []string
	for part := range strings.SplitSeq(urlPath[1:], "/") {
		switch {
		case part == "" || part == ".":
		case part == "..":
			return "", false, errBadPath
		case part[0] == '.':
			return "", false, errHidden
		default:
			parts = append(parts, part)
		}
	}
	if len(parts) == 0 {
		return ".", true, nil
	}
	return strings.Join(parts, "/"), strings.HasSuffix(urlPath, "/"), nil
}

// indexFile is served for a directory that holds it (IIS's default
// document); other directories are 403, as IIS with directory browsing
// off answers.
const indexFile = "index.html"

// openFile opens rel (from cleanPath) below the served directory for
// reading. Symbolic links are followed only while they stay inside it
// (os.Root enforces that without races). A directory gives its index file
// when asked in the slash form, errIsDir otherwise; anything but a regular
// file or directory is not found. The returned rel names the file opened.
func (s *Server) openFile(rel string, dirForm bool) (*os.File, stamp, string, error) {
	f, fi, err := s.openRegular(rel)
	if err == nil && dirForm {
		// "file/" names no directory: not found, as on any web server.
		f.Close()
		return nil, stamp{}, rel, errNotFound
	}
	if errors.Is(err, errIsDir) {
		if !dirForm && rel != "." {
			return nil, stamp{}, rel, errIsDir
		}
		index := indexFile
		if rel != "." {
			index = rel + "/" + indexFile
		}
		f, fi, err = s.openRegular(index)
		switch {
		case err == nil:
			rel = index
		case errors.Is(err, errNotFound), errors.Is(err, errIsDir):
			return nil, stamp{}, rel, errForbidden
		}
	}
	if err != nil {
		return nil, stamp{}, rel, err
	}
	return f, stampOf(fi), rel, nil
}

// openRegular opens rel if it is a regular file. O_NONBLOCK keeps a FIFO
// planted in the tree from blocking the request; it changes nothing for
// regular files.
func (s *Server) openRegular(rel string) (*os.File, fs.FileInfo, error) {
	f, err := s.root.OpenFile(rel, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, nil, mapOpenError(err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("origin: stat %s: %w", rel, err)
	}
	switch {
	case fi.IsDir():
		f.Close()
		return nil, nil, errIsDir
	case !fi.Mode().IsRegular():
		f.Close()
		return nil, nil, errNotFound
	}
	return f, fi, nil
}

func mapOpenError(err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ENOTDIR), errors.Is(err, syscall.ELOOP):
		return errNotFound
	case errors.Is(err, fs.ErrPermission):
		return errForbidden
	}
	// os.Root reports a path leaving the tree (through a symbolic link)
	// with an unexported error: treat it, and anything unexpected, as
	// absent rather than say why.
	return fmt.Errorf("%w: %v", errNotFound, err)
}
