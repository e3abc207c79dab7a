package store

import (
	"encoding/binary"
	"hash/maphash"
	"os"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// A block served from a mapped pack is checked against its CRC32C the
// first time it is viewed, and again whenever one of its pages is not in
// memory when it is viewed (it is about to be read from the disk, which
// is where a damaged sector or a torn write enters); a block whose pages
// stayed in memory since its check is not read through once more. A pack
// entry never changes once written, the mapping is read-only, and the
// check's record lives only in memory, so after a crash or power cut
// every block is checked again before it is first served. Reading the
// block for its CRC costs more than sending it (the CPU reads the page
// cache, where sending is a copy the kernel makes anyway); skipping that
// read for resident blocks is what lets a cheap box serve its hot set at
// line rate.

// checkedSlots sizes the record of checked blocks: 65 536 slots of 8
// bytes (512 KiB) cover a hot set of 4 GiB of 64 KiB blocks; a block
// whose slot was taken by another is simply checked again.
const checkedSlots = 1 << 16

// checkedSet records blocks that passed their check, by a 64-bit
// fingerprint of pack, offset and CRC, in a direct-mapped table.
type checkedSet struct {
	seed  maphash.Seed
	slots []atomic.Uint64
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

func (c *checkedSet) has(fp uint64) bool { return c.slots[fp%checkedSlots].Load() == fp }
func (c *checkedSet) add(fp uint64)      { c.slots[fp%checkedSlots].Store(fp) }
func (c *checkedSet) remove(fp uint64)   { c.slots[fp%checkedSlots].CompareAndSwap(fp, 0) }

// pageSize is the kernel's page size (mincore works in pages).
var pageSize = uintptr(os.Getpagesize())

// resident reports whether every page of payload, a slice of the
// mapping, is in memory; false when it cannot tell.
func (m *packMap) resident(payload []byte) bool {
	base := uintptr(unsafe.Pointer(unsafe.SliceData(m.data)))
	start := uintptr(unsafe.Pointer(unsafe.SliceData(payload))) - base
	first := start &^ (pageSize - 1) // mincore wants a page-aligned start
	end := start + uintptr(len(payload))
	var vec [64]byte
	pages := (end - first + pageSize - 1) / pageSize
	if pages > uintptr(len(vec)) {
		return false
	}
	// x/sys has no Linux wrapper for mincore(2).
	_, _, errno := unix.Syscall(unix.SYS_MINCORE, base+first, end-first, uintptr(unsafe.Pointer(&vec[0])))
	if errno != 0 {
		return false
	}
	for _, v := range vec[:pages] {
		if v&1 == 0 {
			return false
		}
	}
	return true
}
