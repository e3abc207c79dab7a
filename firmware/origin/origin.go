// Package origin is a BranchCache-enabled HTTP content server (MS-PCCRTP),
// the library behind `outpost origin`: it serves the files under a
// directory as IIS with BranchCache does. A GET or HEAD that asks for the
// peerdist encoding is answered with Content Information V1 or V2 for the
// file (or for the requested byte range); every other request, and every
// MissingDataRequest, gets the bytes with Range, ETag, Last-Modified and
// conditional requests honoured. Content information is computed once per
// file version and server secret and kept in a cache directory outside the
// served tree; large files are hashed in the background and served plainly
// until ready. docs/origin.md describes the behaviour and its choices.
package origin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/outpost-appliance/outpost/peerdist/pccrc"
)

// Defaults of Options.
const (
	// DefaultMinFileAge is how long a file must have been left alone
	// before it is hashed: longer than the coarsest file timestamp (FAT's
	// 2 s), so a write during hashing always changes the file's stamp.
	DefaultMinFileAge = 3 * time.Second
	// DefaultHashWorkers is how many files are hashed at once in the
	// background. Each hash already uses every core; two keep a small
	// file from waiting behind a large one.
	DefaultHashWorkers = 2
	// DefaultMemoryCache bounds the content information kept in memory.
	DefaultMemoryCache = 64 << 20
)

// Options configure a Server.
type Options struct {
	// Dir is the directory served. Required.
	Dir string
	// Secret is the server secret key (for a passphrase set with `netsh
	// branchcache set key`, its UTF-16LE bytes: see pccrc.PassphraseSecret).
	// Required.
	Secret []byte
	// CacheDir keeps computed content information; DefaultCacheDir() when
	// empty. It must not lie inside Dir.
	CacheDir string
	// Logger receives the access log (one line per request, at
	// AccessLogLevel) and hashing events; slog.Default() when nil.
	Logger *slog.Logger
	// AccessLogLevel is the level of access-log lines (default Info; the
	// zero value of slog.Level is Info).
	AccessLogLevel slog.Level
	// InlineHashLimit: files up to this size are hashed before answering,
	// so the first peerdist request already gets content information;
	// larger ones are hashed in the background and served plainly until
	// ready. 0 hashes every file in the background, as IIS does (and as
	// Microsoft's conformance suite expects: its first request for a file
	// must get the content).
	InlineHashLimit int64
	// Versions lists the content information versions offered; both when
	// empty.
	Versions []pccrc.Version
	// HashWorkers bounds background hashing (DefaultHashWorkers when 0).
	HashWorkers int
	// MinFileAge: a file whose status changed less than this long ago is
	// served plainly and hashed once it has settled (DefaultMinFileAge
	// when 0; negative: no wait, for tests).
	MinFileAge time.Duration
	// MemoryCache bounds the bytes of content information kept in memory
	// (DefaultMemoryCache when 0).
	MemoryCache int64
	// Prehash hashes every file of Dir in the background at start, so
	// first requests already get content information.
	Prehash bool
}

// Server serves a directory over HTTP with the peerdist encoding. Create
// it with New; it is an http.Handler. Close stops background hashing.
type Server struct {
	opts     Options
	root     *os.Root
	dir      string // Dir, absolute
	log      *slog.Logger
	versions [3]bool // indexed by pccrc.Version
	disk     *diskCache
	mem      *memCache

	ctx    context.Context // cancelled by Close; bounds background work
	cancel context.CancelFunc
	wg     sync.WaitGroup

	bgSlots     chan struct{} // background hashing
	inlineSlots chan struct{} // hashing inside a request

	mu   sync.Mutex
	jobs map[cacheKey]*job

	stats counters
	close sync.Once
}

// Stats are counters since the server started, for tests, logs and
// metrics.
type Stats struct {
	HashRuns       int64 // content information generations that ran to the end
	HashFailures   int64 // generations that failed or saw the file change
	DiskHits       int64 // content information loaded from the cache directory
	DamagedEntries int64 // cache entries found damaged and recomputed
	PeerDist       int64 // responses with Content-Encoding: peerdist
	Plain          int64 // file responses with the content itself
	HashesPending  int64 // plain responses to peerdist requests (MakeHashRequest)
}

type counters struct {
	hashRuns, hashFailures, diskHits, damaged, peerDist, plain, pending atomic.Int64
}

// Stats returns the current counters.
func (s *Server) Stats() Stats {
	c := &s.stats
	return Stats{
		HashRuns: c.hashRuns.Load(), HashFailures: c.hashFailures.Load(), DiskHits: c.diskHits.Load(),
		DamagedEntries: c.damaged.Load(), PeerDist: c.peerDist.Load(), Plain: c.plain.Load(),
		HashesPending: c.pending.Load(),
	}
}

// New checks opts, opens Dir and the cache directory, and returns a
// Server ready to serve.
func New(opts Options) (*Server, error) {
	if opts.Dir == "" {
		return nil, errors.New("origin: no directory to serve")
	}
	if len(opts.Secret) == 0 {
		return nil, errors.New("origin: no server secret")
	}
	dir, err := filepath.Abs(opts.Dir)
	if err == nil {
		dir, err = filepath.EvalSymlinks(dir)
	}
	if err != nil {
		return nil, fmt.Errorf("origin: directory %s: %w", opts.Dir, err)
	}
	if st, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("origin: directory: %w", err)
	} else if !st.IsDir() {
		return nil, fmt.Errorf("origin: %s is not a directory", opts.Dir)
	}
	if opts.CacheDir == "" {
		opts.CacheDir = DefaultCacheDir()
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.HashWorkers <= 0 {
		opts.HashWorkers = DefaultHashWorkers
	}
	if opts.MinFileAge == 0 {
		opts.MinFileAge = DefaultMinFileAge
	}
	if opts.MemoryCache <= 0 {
		opts.MemoryCache = DefaultMemoryCache
	}
	if opts.InlineHashLimit < 0 {
		opts.InlineHashLimit = 0
	}
	if len(opts.Versions) == 0 {
		opts.Versions = []pccrc.Version{pccrc.V1, pccrc.V2}
	}
	s := &Server{opts: opts, dir: dir, log: opts.Logger, jobs: map[cacheKey]*job{}}
	for _, v := range opts.Versions {
		if v != pccrc.V1 && v != pccrc.V2 {
			return nil, fmt.Errorf("origin: content information version %d: want 1 or 2", v)
		}
		s.versions[v] = true
	}
	if s.disk, err = openDiskCache(opts.CacheDir, dir, opts.Secret); err != nil {
		return nil, err
	}
	if s.root, err = os.OpenRoot(dir); err != nil {
		return nil, fmt.Errorf("origin: %w", err)
	}
	s.mem = newMemCache(opts.MemoryCache)
	s.bgSlots = make(chan struct{}, opts.HashWorkers)
	s.inlineSlots = make(chan struct{}, runtime.GOMAXPROCS(0))
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.wg.Go(func() { s.disk.collect(s.ctx, s.root, s.log) })
	if opts.Prehash {
		s.wg.Go(s.prehash)
	}
	s.log.Info("origin: serving", "dir", dir, "cache", s.disk.dir, "versions", opts.Versions,
		"inline_hash_limit", opts.InlineHashLimit, "hash_workers", opts.HashWorkers)
	return s, nil
}

// Close stops background hashing, waits for it, and closes the directory.
// Requests in flight should be finished first (http.Server.Shutdown).
func (s *Server) Close() error {
	var err error
	s.close.Do(func() {
		s.cancel()
		s.wg.Wait()
		err = s.root.Close()
	})
	return err
}

// DefaultCacheDir is where content information is kept when
// Options.CacheDir is empty: $XDG_CACHE_HOME/outpost-origin when that is
// set, /var/cache/outpost-origin for root, else ~/.cache/outpost-origin.
func DefaultCacheDir() string {
	if x := os.Getenv("XDG_CACHE_HOME"); filepath.IsAbs(x) {
		return filepath.Join(x, "outpost-origin")
	}
	if os.Geteuid() != 0 {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, ".cache", "outpost-origin")
		}
	}
	return "/var/cache/outpost-origin"
}

// versionEnabled reports whether content information version v (1 or 2)
// is offered.
func (s *Server) versionEnabled(v int) bool { return v >= 1 && v <= 2 && s.versions[v] }

var _ http.Handler = (*Server)(nil)
