package store

import (
	"sync"

	"github.com/outpost-appliance/outpost/peerdist/pccrc"
	"github.com/outpost-appliance/outpost/peerdist/pccrr"
)

// Every put needs its segment's shape (version, size, whether hashes are
// known, which blocks are held). Reading the record from Badger each time
// costs a read transaction, and Badger makes a new read transaction wait
// for the commits in flight: under ingest that wait dominated the put
// path. The writer, which makes every change, keeps this cache current
// as it commits; a put that misses reads Badger and fills the cache, but
// only if no change to that segment slipped in meanwhile (a generation
// count per shard says so). A stale answer is harmless anyway: the writer
// re-checks every block against the record before indexing it.

const (
	segCacheShards = 256
	segCacheMax    = 8192 // entries (~200 bytes each)
)

type segMeta struct {
	version     pccrc.Version
	size        uint32
	hashesKnown bool
	held        pccrr.BlockSet
	verified    pccrr.BlockSet
	tags        tagSet // for serving (OpenBlock)
	// epoch names this version of the cached shape, unique in the
	// process (0: not cached); the entry cache is valid only for it.
	epoch uint64
}

type segCache struct {
	mu     sync.Mutex
	m      map[string]segMeta
	gen    [segCacheShards]uint64
	epochs uint64 // the last epoch given out
}

func (c *segCache) init() { c.m = make(map[string]segMeta) }

func shardOf(id []byte) int { return int(id[0]) % segCacheShards }

func metaOf(rec *record) segMeta {
	return segMeta{version: rec.version, size: rec.size, hashesKnown: rec.hashesKnown, held: rec.held, verified: rec.verified, tags: rec.tags}
}

// record rebuilds the fields of a record a put needs.
func (m *segMeta) record() *record {
	return &record{version: m.version, size: m.size, hashesKnown: m.hashesKnown, held: m.held, verified: m.verified, tags: m.tags}
}

// lookup returns a segment's cached shape, or the generation to pass to
// fill after reading it from Badger.
func (c *segCache) lookup(id []byte) (segMeta, uint64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	m, ok := c.m[string(id)]
	return m, c.gen[shardOf(id)], ok
}

// fill caches what a reader found, unless the writer changed a segment of
// the same shard since gen, and returns the cached shape's epoch (0 if
// not cached).
func (c *segCache) fill(id []byte, rec *record, gen uint64) (epoch uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen[shardOf(id)] != gen {
		return 0
	}
	if len(c.m) >= segCacheMax {
		for k := range c.m { // drop an arbitrary entry
			delete(c.m, k)
			break
		}
	}
	meta := metaOf(rec)
	c.epochs++
	meta.epoch = c.epochs
	c.m[string(id)] = meta
	return meta.epoch
}

// update records a committed change (writer only): after is nil when the
// segment is gone.
func (c *segCache) update(id []byte, after *record) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen[shardOf(id)]++
	if _, ok := c.m[string(id)]; !ok {
		return
	}
	if after == nil {
		delete(c.m, string(id))
		return
	}
	meta := metaOf(after)
	c.epochs++
	meta.epoch = c.epochs
	c.m[string(id)] = meta
}

// clear forgets everything (Flush).
func (c *segCache) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.m)
	for i := range c.gen {
		c.gen[i]++
	}
}
