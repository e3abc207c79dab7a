package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/outpost-appliance/outpost/peerdist/pccrc"
	"github.com/outpost-appliance/outpost/peerdist/pccrr"
)

// formatVersion is the store's on-disk format. Bump it when the key
// layout or a value format changes incompatibly; older firmware then
// refuses the directory instead of misreading it.
const formatVersion = 1

// formatFile names the file that records the format. It is read before
// Badger touches the directory, so a refused store is left exactly as it
// was.
const formatFile = "FORMAT"

const formatMagic = "outpost-segment-store"

// MaxBlockBytes is the most ReadBlock copies: a 128 KiB V2 segment padded
// by PKCS#7 (16 bytes more) and its 16-byte IV.
const MaxBlockBytes = pccrc.MaxSegmentSizeV2 + 16 + ivSize

const ivSize = 16

// Block is a stored block ready to serve as a MSG_BLK payload.
type Block struct {
	Crypto     pccrr.CryptoAlgo
	IV         []byte
	Ciphertext []byte
}

// Store is the segment store. Its methods are safe for concurrent use.
type Store struct {
	opt    Options
	log    *slog.Logger
	db     *badger.DB
	packs  *packSet
	tune   tuning
	badger badger.Options
	// reserve is the free space a block write must leave: Badger
	// pre-allocates its memtable logs and tables as sparse mmapped files,
	// and a write into a hole on a full filesystem is a SIGBUS, not an
	// error. Refusing writes while the reserve is short turns a full disk
	// into ErrDiskFull.
	reserve uint64
	// badgerDirty: index changes committed since Badger's log was last
	// synced (writer only).
	badgerDirty bool
	// freeSpace is the last statfs figure, and what was written since.
	freeSpace struct {
		mu      sync.Mutex
		free    uint64
		at      time.Time
		written uint64
	}

	// mu is held shared by every Badger access and exclusively by Flush
	// (Badger's DropAll must not race reads) and Close.
	mu     sync.RWMutex
	closed bool

	puts       chan *putRequest
	batchReady chan struct{} // a full batch is queued
	ops        chan *op
	repairs    chan blockRef
	stop       chan struct{} // closed by Close
	writerDone chan struct{} // closed when the writer has exited
	background sync.WaitGroup
	ctx        context.Context // canceled by Close, for background work
	cancel     context.CancelFunc

	gcMu      sync.Mutex    // one GC pass at a time; Flush holds it too
	kick      chan struct{} // asks the maintainer for a pass now
	maintLock sync.Mutex    // one maintenance pass at a time

	failedPuts atomic.Int64 // queued blocks whose commit failed

	access  accessLog
	pending pendingBlocks
	shapes  segCache
	entries entryCache
	feed    feed
	stats   counters
}

// Open opens (or creates) the store in opt.Dir, checks its format,
// recomputes its accounting from its contents (repairing any mismatch),
// and starts eviction, access-time flushing and GC in the background.
func Open(ctx context.Context, opt Options) (*Store, error) {
	if err := opt.validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(opt.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("store: open: %w", err)
	}
	if err := checkFormat(opt.Dir); err != nil {
		return nil, err
	}
	if err := removeEmptyLogs(opt.Dir, opt.Logger); err != nil {
		return nil, err
	}
	bopt, tune, err := badgerOptions(opt.Dir, opt.Profile)
	if err != nil {
		return nil, err
	}
	bopt = bopt.WithLogger(badgerLogger{opt.Logger})
	if opt.Tune != nil {
		opt.Tune(&bopt)
	}
	if opt.PackSize > 0 {
		tune.packSize = opt.PackSize
	}
	packs, err := openPacks(filepath.Join(opt.Dir, "packs"), tune.packSize, tune.lanes)
	if err != nil {
		return nil, fmt.Errorf("store: open: %w", err)
	}
	db, err := badger.Open(bopt)
	if err != nil {
		packs.close()
		return nil, fmt.Errorf("store: open badger in %s: %w", opt.Dir, err)
	}
	s := &Store{
		opt:     opt,
		log:     opt.Logger.With("component", "store"),
		db:      db,
		packs:   packs,
		tune:    tune,
		badger:  bopt,
		reserve: badgerReserve(bopt),
		// The queue holds as many blocks as the group commits in flight.
		puts:       make(chan *putRequest, tune.syncDepth*tune.maxBatchBytes/pccrc.BlockSize),
		ops:        make(chan *op),
		batchReady: make(chan struct{}, 1),
		repairs:    make(chan blockRef, 64),
		stop:       make(chan struct{}),
		writerDone: make(chan struct{}),
		kick:       make(chan struct{}, 1),
	}
	s.access.init()
	s.pending.init()
	s.shapes.init()
	s.entries.init()
	s.feed.init(opt.FeedBuffer)
	s.ctx, s.cancel = context.WithCancel(context.Background())
	start := time.Now()
	if err := s.recount(ctx); err != nil {
		s.cancel()
		return nil, errors.Join(fmt.Errorf("store: open: %w", err), db.Close(), packs.close())
	}
	s.refreshDisk()
	st := s.Stats()
	s.log.Info("store opened", "dir", opt.Dir, "profile", opt.Profile, "segments", st.Segments,
		"blocks", st.Blocks, "bytes", st.Bytes, "limit", st.LimitBytes, "took", time.Since(start).Round(time.Millisecond))
	s.background.Add(2)
	go s.writeLoop()
	go s.maintainLoop()
	return s, nil
}

// Close stops background work, writes pending access times and closes
// the database. Blocked calls return ErrClosed.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	close(s.stop)
	s.cancel()
	s.background.Wait()
	s.feed.close()
	if err := errors.Join(s.db.Close(), s.packs.close()); err != nil {
		return fmt.Errorf("store: close: %w", err)
	}
	return nil
}

// readLock takes the shared lock for a Badger access; it fails once the
// store is closed.
func (s *Store) readLock() error {
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return ErrClosed
	}
	return nil
}

func checkFormat(dir string) error {
	path := filepath.Join(dir, formatFile)
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		fields := strings.Fields(string(data))
		if len(fields) != 2 || fields[0] != formatMagic {
			return fmt.Errorf("store: %s: %q is not a segment store format line: %w", path, firstLine(data), ErrUnknownFormat)
		}
		v, err := strconv.Atoi(fields[1])
		switch {
		case err != nil || v < 1:
			return fmt.Errorf("store: %s: format %q: %w", path, fields[1], ErrUnknownFormat)
		case v > formatVersion:
			return fmt.Errorf("store: %s was written by newer firmware (format %d; this firmware reads up to %d); "+
				"refusing to open it and leaving it untouched (upgrade the firmware, or flush the store by removing the directory): %w",
				dir, v, formatVersion, ErrNewerFormat)
		}
		return nil
	case !errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("store: read %s: %w", path, err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("store: open: %w", err)
	}
	for _, e := range entries {
		// A FORMAT.tmp is what a crash while creating the store leaves.
		if e.Name() != formatFile+".tmp" {
			return fmt.Errorf("store: %s has no %s file but is not empty (%s, …); refusing to use it: %w",
				dir, formatFile, e.Name(), ErrUnknownFormat)
		}
	}
	return writeFileAtomic(path, []byte(fmt.Sprintf("%s %d\n", formatMagic, formatVersion)))
}

func firstLine(b []byte) string {
	line, _, _ := bytes.Cut(b, []byte("\n"))
	if len(line) > 64 {
		line = line[:64]
	}
	return string(line)
}

// writeFileAtomic writes a file so that a crash leaves either nothing or
// the whole file: temporary file, fsync, rename, fsync of the directory.
func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o640)
	if err != nil {
		return fmt.Errorf("store: write %s: %w", path, err)
	}
	_, werr := f.Write(data)
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		return fmt.Errorf("store: write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("store: write %s: %w", path, err)
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return fmt.Errorf("store: sync dir of %s: %w", path, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("store: sync dir of %s: %w", path, err)
	}
	return nil
}

// badgerReserve is the free space Badger may need for the sparse files it
// pre-allocates and fills through mmap: the memtable logs (twice the
// memtable size each, active and flushing), the value-log head file, and
// the tables being flushed or compacted.
func badgerReserve(o badger.Options) uint64 {
	return uint64(2*int64(o.NumMemtables+1)*o.MemTableSize + 2*o.ValueLogFileSize +
		2*o.MemTableSize + int64(4*o.NumCompactors)*o.BaseTableSize + 16<<20)
}

// removeEmptyLogs deletes zero-length memtable and value-log files before
// Badger opens the directory. A crash between creating such a file and
// sizing it leaves one behind, and Badger then refuses to open at all
// (badger issue #2207, found by the crash test). An empty log holds
// nothing, so removing it loses nothing.
func removeEmptyLogs(dir string, log *slog.Logger) error {
	for _, pattern := range []string{"*.mem", "*.vlog"} {
		files, err := filepath.Glob(filepath.Join(dir, pattern))
		if err != nil {
			return fmt.Errorf("store: open: %w", err)
		}
		for _, f := range files {
			info, err := os.Stat(f)
			if err != nil || info.Size() != 0 {
				continue
			}
			log.Warn("store: removing an empty log file left by a crash", "file", f)
			if err := os.Remove(f); err != nil {
				return fmt.Errorf("store: open: %w", err)
			}
		}
	}
	return nil
}
