package store

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
)

// Profile selects Badger settings for the board's memory (the config's
// profile = "small" | "large").
type Profile string

// The profiles.
const (
	// ProfileSmall is for boards with 512 MiB – 2 GiB of RAM (a Raspberry
	// Pi, a small VM): Badger's memory is capped near 40 MiB (memtables
	// 16, caches 24) and the store's anonymous RSS measured ~30 MiB while
	// ingesting 2 GiB.
	ProfileSmall Profile = "small"
	// ProfileLarge is for x86 mini-PCs and VMs with 4 GiB or more: larger
	// memtables, caches and group commits for throughput, still bounded
	// (Badger ~400 MiB).
	ProfileLarge Profile = "large"
)

// Defaults an appliance operator expects (Windows' own where one exists).
const (
	DefaultLimitPercent        = 80                  // of the data filesystem
	DefaultMaxAge              = 28 * 24 * time.Hour // Windows' segment age
	DefaultMinFreePercent      = 5                   // low-disk floor
	DefaultAccessFlushInterval = 10 * time.Second
	DefaultMaintenanceInterval = 30 * time.Second
	DefaultGCInterval          = 10 * time.Minute
	DefaultFeedBuffer          = 4096
)

// DiskSpace is what the store needs to know about its filesystem.
type DiskSpace struct {
	Total uint64 // filesystem size in bytes
	Free  uint64 // bytes available to the store (statfs f_bavail)
}

// Options configure a Store. Start from DefaultOptions: in a literal
// Options, zero limits mean "no limit" (LimitBytes, LimitPercent, MaxAge,
// MinFreePercent), whereas DefaultOptions applies the appliance defaults.
type Options struct {
	// Dir holds the store (a Badger database and a FORMAT file). It is
	// created if missing.
	Dir     string
	Profile Profile // ProfileSmall if empty

	// LimitBytes bounds the live data (block bytes plus segment hashes);
	// 0 = no byte limit. LimitPercent bounds it as a percentage of the
	// data filesystem's size; 0 = none. When both are set the smaller
	// wins. Overhead comes on top — dead space in packs awaiting GC, pack
	// headers, Badger's tables (~0.5%) — and GC keeps the total within
	// 1.2x of the live data.
	LimitBytes   int64
	LimitPercent float64
	// MaxAge evicts segments not accessed for this long; 0 = never.
	MaxAge time.Duration
	// MinFreePercent is the low-disk floor: when the filesystem's free
	// space falls below it, the store evicts regardless of its limit;
	// 0 = off.
	MinFreePercent float64

	// AccessFlushInterval is how often batched access times (LRU order,
	// hit counts) are written; reads never write.
	AccessFlushInterval time.Duration
	// MaintenanceInterval is how often max age and the low-disk floor are
	// checked.
	MaintenanceInterval time.Duration
	// GCInterval is how often value-log GC runs on a schedule (it also
	// runs after large evictions).
	GCInterval time.Duration
	// FeedBuffer is the number of events a subscriber may fall behind
	// before it is told to resync.
	FeedBuffer int

	Logger *slog.Logger
	// Now is the clock (tests move it); time.Now if nil.
	Now func() time.Time
	// Statfs reports the data filesystem's space (tests simulate a full
	// disk with it); statfs(2) of Dir if nil.
	Statfs func(dir string) (DiskSpace, error)
	// PackSize overrides the profile's pack-file size (tests).
	PackSize int64
	// Tune, if set, adjusts the profile's Badger options last. For tests
	// and experiments: the profiles are what the appliance runs.
	Tune func(*badger.Options)
}

// DefaultOptions returns the appliance defaults for a store in dir: the
// small profile, 80% of the filesystem, 28 days, a 5% free-space floor.
func DefaultOptions(dir string) Options {
	return Options{
		Dir:            dir,
		Profile:        ProfileSmall,
		LimitPercent:   DefaultLimitPercent,
		MaxAge:         DefaultMaxAge,
		MinFreePercent: DefaultMinFreePercent,
	}
}

// tuning is what a profile decides beyond Badger's own options.
type tuning struct {
	// maxBatchBytes bounds one group commit (one fdatasync): bigger
	// batches mean fewer syncs; the put queue holds two batches, so this
	// also bounds the memory of queued blocks.
	maxBatchBytes int
	// packSize is the size at which a pack file is closed and a new one
	// started.
	packSize int64
	// lanes is the number of packs appended to at once: a group commit
	// syncs them in parallel.
	lanes int
	// syncDepth is the number of group commits whose syncs may be in
	// flight at once.
	syncDepth int
}

// badgerOptions are the Badger settings of a profile, each with the reason
// for it. Badger's defaults suit a server with tens of GiB of RAM: with
// them a 1 GiB board is OOM-killed within seconds of ingesting 64 KiB
// values (platform.md §5).
func badgerOptions(dir string, profile Profile) (badger.Options, tuning, error) {
	opt := badger.DefaultOptions(dir).
		// Badger holds only metadata: block index entries (24 bytes),
		// segment records (228 bytes) and hashes (up to 33 KB for a
		// SHA-512 segment). Everything stays in the LSM tree, so Badger's
		// value log — mmapped, garbage-collected late — is never used;
		// block bytes live in pack files (packs.go).
		WithValueThreshold(64 << 10).
		WithValueLogFileSize(1 << 20).
		// The writer fdatasyncs pack bytes before it commits the index
		// that points at them, then syncs Badger's log at most a second
		// later (and on Sync): per-commit syncs of the WAL would double
		// the syncs and buy nothing a cache needs (writer.go).
		WithSyncWrites(false).
		// LSM blocks (index entries, records) are checksummed when read
		// from disk. Block bytes carry their own CRC32C (packs.go).
		WithChecksumVerificationMode(options.OnBlockRead).
		// Keys are hashes, values small binary records: compression would
		// cost CPU for little.
		WithCompression(options.None).
		// One goroutine writes (the writer), so Badger's conflict tracking
		// would only cost memory.
		WithDetectConflicts(false).
		// Badger's expvar metrics are process-global; the store keeps its own.
		WithMetricsEnabled(false).
		WithNumVersionsToKeep(1)

	var t tuning
	switch profile {
	case ProfileSmall, "":
		opt = opt.
			// The LSM tree holds ~300 bytes per block (index entry, its
			// share of records and hashes), so an 8 MiB memtable covers
			// ~25 000 blocks (1.6 GiB of data); two of them (one active,
			// one flushing) cap memtable memory at 16 MiB instead of
			// Badger's 320 MiB.
			WithMemTableSize(8 << 20).
			WithNumMemtables(2).
			// Block cache for LSM blocks: index entries and records read by
			// every ReadBlock. 16 MiB keeps the hot part of a few-million-
			// block index cached; Badger's 256 MiB would be a quarter of
			// the board's RAM.
			WithBlockCacheSize(16 << 20).
			// Bounds table indexes and Bloom filters; the default (0) pins
			// them all on the Go heap, growing with the store.
			WithIndexCacheSize(8 << 20).
			// Two compactors is Badger's minimum; the LSM tree is ~0.5% of
			// the data.
			WithNumCompactors(2).
			WithNumLevelZeroTables(2).
			WithNumLevelZeroTablesStall(8).
			// Small tables: less to rewrite per compaction.
			WithBaseTableSize(2 << 20).
			// Goroutines for iteration and streaming: two cores.
			WithNumGoroutines(2)
		// 2 MiB per group commit (one fdatasync): 32 full blocks.
		t.maxBatchBytes = 2 << 20
		// 64 MiB packs: the unit of compaction, so a partly live pack is
		// cheap to rewrite; ~16 000 open files per TiB.
		t.packSize = 64 << 20
		// Four packs filled at once: a group commit's fdatasyncs overlap,
		// and puts spread over four files.
		t.lanes = 4
		// Up to eight group commits syncing at once (16 MiB written and
		// not yet synced), as concurrent pullers writing plain files would
		// overlap their fsyncs.
		t.syncDepth = 8
	case ProfileLarge:
		opt = opt.
			WithMemTableSize(64 << 20).
			WithNumMemtables(3).
			WithBlockCacheSize(128 << 20).
			WithIndexCacheSize(64 << 20).
			WithNumCompactors(4).
			WithNumLevelZeroTables(5).
			WithNumLevelZeroTablesStall(15).
			WithBaseTableSize(4 << 20).
			WithNumGoroutines(8)
		t.maxBatchBytes = 8 << 20
		t.packSize = 256 << 20
		t.lanes = 4
		t.syncDepth = 16
	default:
		return opt, t, fmt.Errorf("store: unknown profile %q (want %q or %q)", profile, ProfileSmall, ProfileLarge)
	}
	return opt, t, nil
}

func (o *Options) validate() error {
	var errs []error
	if o.Dir == "" {
		errs = append(errs, errors.New("Dir is empty"))
	}
	if o.LimitBytes < 0 {
		errs = append(errs, fmt.Errorf("LimitBytes %d is negative", o.LimitBytes))
	}
	if o.LimitPercent < 0 || o.LimitPercent > 100 {
		errs = append(errs, fmt.Errorf("LimitPercent %v is not in 0-100", o.LimitPercent))
	}
	if o.MinFreePercent < 0 || o.MinFreePercent >= 100 {
		errs = append(errs, fmt.Errorf("MinFreePercent %v is not in 0-100", o.MinFreePercent))
	}
	if o.MaxAge < 0 {
		errs = append(errs, fmt.Errorf("MaxAge %v is negative", o.MaxAge))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("store: options: %w", err)
	}
	if o.AccessFlushInterval <= 0 {
		o.AccessFlushInterval = DefaultAccessFlushInterval
	}
	if o.MaintenanceInterval <= 0 {
		o.MaintenanceInterval = DefaultMaintenanceInterval
	}
	if o.GCInterval <= 0 {
		o.GCInterval = DefaultGCInterval
	}
	if o.FeedBuffer <= 0 {
		o.FeedBuffer = DefaultFeedBuffer
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Statfs == nil {
		o.Statfs = statfs
	}
	if o.Profile == "" {
		o.Profile = ProfileSmall
	}
	return nil
}

// badgerLogger sends Badger's log to slog. Badger is chatty at Info
// (every compaction), so Info goes to Debug.
type badgerLogger struct{ log *slog.Logger }

func (l badgerLogger) Errorf(f string, a ...any)   { l.log.Error("badger: " + fmt.Sprintf(f, a...)) }
func (l badgerLogger) Warningf(f string, a ...any) { l.log.Warn("badger: " + fmt.Sprintf(f, a...)) }
func (l badgerLogger) Infof(f string, a ...any)    { l.log.Debug("badger: " + fmt.Sprintf(f, a...)) }
func (l badgerLogger) Debugf(string, ...any)       {}
