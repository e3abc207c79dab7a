package store

import (
	"encoding/binary"
	"hash/maphash"
	"sync/atomic"
	"time"
)

// A block served from a mapped pack is checked against its CRC32C the
// first time it is viewed, and again on its first view after each
// checkTrust period (the record of checked blocks is cleared then); in
// between, a block that passed is not read through once more. The record
// lives only in memory, so after a crash or power cut every block is
// checked again before it is first served, and damage that appears while
// the appliance runs (a sector gone bad under a block whose pages were
// evicted and read back) is caught within checkTrust. Reading the block
// for its CRC costs more than sending it (the CPU reads the page cache,
// where sending is a copy the kernel makes anyway), and asking the kernel
// whether the pages stayed in memory (mincore) costs a system call per
// block, which measured as much again: skipping both for blocks checked
// lately is what lets a cheap box serve its hot set at line rate. Windows
// and iPXE clients check every block against its hash besides.

// checkTrust is how long a passed check stands.
const checkTrust = 10 * time.Minute

// checkedSlots sizes the record of checked blocks: 65 536 slots of 8
// bytes (512 KiB) cover a hot set of 4 GiB of 64 KiB blocks; a block
// whose slot was taken by another is simply checked again.
const checkedSlots = 1 << 16

// checkedSet records blocks that passed their check, by a 64-bit
// fingerprint of pack, offset and CRC, in a direct-mapped table.
type checkedSet struct {
	seed    maphash.Seed
	slots   []atomic.Uint64
	cleared atomic.Int64 // when the record was last cleared (Unix ns)
}

func newCheckedSet() *checkedSet {
	return &checkedSet{seed: maphash.MakeSeed(), slots: make([]atomic.Uint64, checkedSlots)}
}

// fingerprint names a pack entry with its CRC (never 0).
func (c *checkedSet) fingerprint(e *packEntry) uint64 {
	var key [16]byte
	binary.LittleEndian.PutUint32(key[0:], e.pack)
	binary.LittleEndian.PutUint64(key[4:], uint64(e.offset))
	binary.LittleEndian.PutUint32(key[12:], e.payload)
	return maphash.Bytes(c.seed, key[:]) | 1
}

// has reports whether a block passed its check within checkTrust of now
// (Unix ns), clearing the record when its period is over.
func (c *checkedSet) has(fp uint64, now int64) bool {
	if last := c.cleared.Load(); now-last >= int64(checkTrust) || now < last {
		if c.cleared.CompareAndSwap(last, now) {
			for i := range c.slots {
				c.slots[i].Store(0)
			}
		}
		return false
	}
	return c.slots[fp%checkedSlots].Load() == fp
}

func (c *checkedSet) add(fp uint64)    { c.slots[fp%checkedSlots].Store(fp) }
func (c *checkedSet) remove(fp uint64) { c.slots[fp%checkedSlots].CompareAndSwap(fp, 0) }
