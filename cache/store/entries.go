package store

import (
	"encoding/binary"
	"hash/maphash"
	"sync"
)

// Serving a block needs its index entry (pack, offset, length, CRC), and
// reading it from Badger costs a read transaction per request — with the
// oracle's watermark goroutine woken twice for each — about a tenth of a
// serving process's CPU. The entry cache keeps the entries of blocks
// served lately, each tagged with the epoch of its segment's cached shape
// (segcache.go) when it was read. The writer gives a segment's shape a new
// epoch with every change it commits to that segment (a block added,
// dropped, replaced or verified), so an entry is used only while nothing
// about its segment changed since it was read. The one change that leaves
// the shape alone is compaction moving a block to another pack; the old
// copy is byte for byte the same block and stays readable until its pack
// is removed, and a cached entry whose pack is gone, or whose bytes fail
// their check, is not used: the index is asked instead.

const (
	entryCacheShards   = 64
	entryCacheShardMax = 512 // entries per shard: 32 768 in all (~2 MiB)
)

type cachedEntry struct {
	epoch uint64
	entry packEntry
}

type entryShard struct {
	mu sync.Mutex
	m  map[uint64]cachedEntry
}

// entryCache maps a block (by a 64-bit hash of segment ID and index) to
// its index entry. Two blocks with the same hash cannot be confused: an
// entry is used only with the epoch of its own segment's shape, which no
// other segment's shape has.
type entryCache struct {
	seed   maphash.Seed
	shards [entryCacheShards]entryShard
}

func (c *entryCache) init() {
	c.seed = maphash.MakeSeed()
	for i := range c.shards {
		c.shards[i].m = make(map[uint64]cachedEntry)
	}
}

// key names a block in the cache.
func (c *entryCache) key(segmentID []byte, index uint32) uint64 {
	var h maphash.Hash
	h.SetSeed(c.seed)
	h.Write(segmentID)
	var idx [4]byte
	binary.LittleEndian.PutUint32(idx[:], index)
	h.Write(idx[:])
	return h.Sum64()
}

func (c *entryCache) shard(key uint64) *entryShard { return &c.shards[key%entryCacheShards] }

// get returns the cached entry of a block if it was read under epoch.
func (c *entryCache) get(key, epoch uint64) (packEntry, bool) {
	if epoch == 0 {
		return packEntry{}, false
	}
	sh := c.shard(key)
	sh.mu.Lock()
	ce, ok := sh.m[key]
	sh.mu.Unlock()
	return ce.entry, ok && ce.epoch == epoch
}

// put caches a block's entry read under epoch (0: the shape is not
// cached, nothing to tie the entry to).
func (c *entryCache) put(key, epoch uint64, e packEntry) {
	if epoch == 0 {
		return
	}
	sh := c.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if _, ok := sh.m[key]; !ok && len(sh.m) >= entryCacheShardMax {
		for k := range sh.m { // drop an arbitrary entry
			delete(sh.m, k)
			break
		}
	}
	sh.m[key] = cachedEntry{epoch: epoch, entry: e}
}

// forget drops a block's entry.
func (c *entryCache) forget(key uint64) {
	sh := c.shard(key)
	sh.mu.Lock()
	delete(sh.m, key)
	sh.mu.Unlock()
}

// clear forgets everything (Flush).
func (c *entryCache) clear() {
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		clear(sh.m)
		sh.mu.Unlock()
	}
}
