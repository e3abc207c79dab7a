// Package store is the segment store: the appliance's durable, verified,
// bounded memory of BranchCache content. Badger holds what the store knows
// (segment records, hashes, an index of blocks, the LRU order); the block
// bytes live in append-only pack files beside it (packs.go says why).
//
// # What it keeps
//
// Per segment (keyed by its ID, HoHoDk): a small record (content version,
// hash algorithm, size, blocks held, which of them were verified, first
// seen, last access, hits, content-tag classes), the hashes when content
// information gave them (HoD, Kp, block hashes), and each held block as
// the MSG_BLK payload to serve: CryptoAlgoId, IV and ciphertext. Blocks
// whose hashes are known are decrypted, checked and re-encrypted once
// (AES-256-CBC, key Kp[0:32], random IV) on the way in; blocks offered
// without hashes (V2 BATCHED_OFFER) are kept exactly as received for
// replay. Serving therefore copies stored bytes and does no cryptography;
// ViewBlock does not even copy them, handing the server a checked view
// of a read-only mapping of the pack (packs.go, packmap.go).
//
// # Writing, and crash safety
//
// PutBlock checks the block in the caller's goroutine, writes it into
// space reserved at the end of the current pack (pwrite, concurrently
// with other putters, like plain files) and queues it. One goroutine, the
// writer, takes queued blocks in group commits: it fdatasyncs the pack
// once for the batch, then commits one Badger transaction with the
// blocks' index entries and their segments' records (held sets). Every
// other change (offers, hashes, evictions, deletes, access times) is also
// one transaction in the writer, so records are never updated from two
// places and a change is there entirely or not at all: Badger replays its
// write-ahead log on open up to the last complete transaction.
//
// A pack's bytes are synced before the transaction that points at them is
// written, so no index entry can ever reach the disk ahead of its data.
// Badger's own log is synced at most a second after a commit, on Sync,
// and before any pack is removed (so deletes are durable before the bytes
// they released can vanish).
//
// A process crash (SIGKILL, OOM, panic) loses nothing that was committed:
// the page cache survives the process. A power cut can lose what was not
// yet synced: blocks queued but not committed, up to a second of index
// updates (whose bytes then sit unreferenced in a pack until compaction),
// and up to AccessFlushInterval of access times (LRU order, hits) — and
// nothing else. It cannot produce an entry pointing at bytes that never
// reached the disk, so the store stays consistent. On top of that, Open
// recounts the accounting from the keys and repairs any disagreement
// (recount.go), and the crash test kills an ingesting process at random
// moments and checks every block and every figure after reopening.
//
// # Corruption
//
// A block is never accepted if it fails its hash (when its hash is
// known). Stored bytes carry a CRC32C, kept in the index and checked on
// every read into a buffer, and on a view (serving) unless the same
// block passed its check in this process within the last 10 minutes
// (checked.go) — hardware CRC32C runs at several GB/s, far
// cheaper than hashing a block per request; Badger's LSM blocks (index,
// records) are checksummed when read from disk. A block that fails is
// never served:
// ReadBlock reports ErrCorrupt (which also matches ErrNotFound) and the
// block is dropped, so it is pulled again at the next offer.
//
// # Bounds
//
// A size limit (bytes and percent of the filesystem, the smaller wins),
// least-recently-accessed segment first; a maximum age since last access;
// a free-space floor below which segments go whatever the limit; and a
// reserve below which writes are refused with ErrDiskFull, because
// Badger fills its pre-allocated files through mmap, where a full disk is
// a SIGBUS rather than an error. Pack GC returns the space of evicted
// blocks (gc.go).
//
// The store's directory: FORMAT (the on-disk format version, checked
// before anything else is opened, so a store from newer firmware is
// refused and left untouched), Badger's files, and packs/.
package store
