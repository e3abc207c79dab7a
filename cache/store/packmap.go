package store

import (
	"fmt"
	"math/bits"
	"runtime/debug"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Read-only mappings of packs, for ViewBlock (packs.go says why reads
// are mapped). A pack is mapped on its first view, MAP_SHARED and
// PROT_READ, as far as its reserved size reaches — and, while it is
// still appended to, as far as it may grow (mapSpan), so that appends
// land inside the mapping and need no remap: a mapping may reach past
// the file's end, and the store only ever touches entries that are
// completely written (an entry is visible to readers only after its
// pwrite returned), so the pages past the end are never touched. An
// entry beyond the mapping (a pack that grew past mapSpan) gets a new,
// larger mapping; the old one lives on for the views that hold it.
//
// A mapping is reference-counted: one reference is the pack's while the
// mapping is its current one, one more per view in flight. Removing a
// pack (empty, compacted away, flushed) or closing the store drops the
// pack's reference; the bytes stay mapped, unchanged, until the last
// view's send returns, and the last release unmaps. Nothing ever writes
// into an entry once written, and nothing truncates a pack in place
// (compaction writes live entries to another pack; an empty pack is
// unlinked, which leaves mapped pages alone), so a mapped entry never
// changes under a reader. If a page cannot be read (an I/O error, or a
// file cut short behind the store's back), touching it is a SIGBUS:
// reads of mappings run with debug.SetPanicOnFault and a fault inside
// the mapping becomes a read error, handled like a CRC mismatch.

// maxMappedPacks bounds the live mappings (vm.max_map_count is 65530 by
// default and Badger maps its files too; a large store has tens of
// thousands of packs). At the bound, the mappings of packs not viewed
// since the last sweep are dropped, at most once per sweepInterval;
// views that find no room read with pread instead.
const (
	maxMappedPacks = 8192
	sweepInterval  = time.Second
)

// mapReads is whether packs are mapped at all: not on 32-bit platforms,
// where packs of 64 MiB would exhaust the address space.
const mapReads = bits.UintSize == 64

// packMap is one read-only mapping of a pack file.
type packMap struct {
	pack uint32
	data []byte
	refs atomic.Int64 // the pack's while current, and one per view
	used atomic.Bool  // viewed since the last sweep
	live *atomic.Int64
}

// acquire takes a reference, unless the mapping is already released.
func (m *packMap) acquire() bool {
	for {
		n := m.refs.Load()
		if n <= 0 {
			return false
		}
		if m.refs.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// release drops a reference; the last one unmaps.
func (m *packMap) release() {
	if m.refs.Add(-1) == 0 {
		unix.Munmap(m.data) // fails only for a bad slice, which this is not
		m.live.Add(-1)
	}
}

func (m *packMap) markUsed() {
	if !m.used.Load() {
		m.used.Store(true)
	}
}

// fault turns a panic recovered while reading the mapping into an
// error if it is a memory fault inside the mapping; nil if it is any
// other panic, which the caller goes on with.
func (m *packMap) fault(r any) error {
	if f, ok := r.(interface{ Addr() uintptr }); ok {
		base := uintptr(unsafe.Pointer(unsafe.SliceData(m.data)))
		if a := f.Addr(); a >= base && a-base < uintptr(len(m.data)) {
			return fmt.Errorf("%s: memory fault (I/O error or file cut short) reading its mapping at %d", packName(m.pack), a-base)
		}
	}
	return nil
}

// crcMatches reports whether payload, a slice of the mapping, has the
// CRC32C want; a fault while reading it is an error.
func (m *packMap) crcMatches(payload []byte, want uint32) (ok bool, err error) {
	old := debug.SetPanicOnFault(true)
	defer func() {
		debug.SetPanicOnFault(old)
		if r := recover(); r != nil {
			if err = m.fault(r); err == nil {
				panic(r)
			}
			ok = false
		}
	}()
	return crc32c(payload) == want, nil
}

// sendAndRelease calls send with blk, whose bytes slice the mapping,
// then releases the caller's reference — also if send panics or exits
// its goroutine (an HTTP server recovers a handler's panic; the mapping
// must not leak). A fault while send reads the bytes is returned as an
// error (faulted set) instead of killing the process.
func (m *packMap) sendAndRelease(send func(OpenedBlock) error, blk OpenedBlock) (faulted bool, err error) {
	old := debug.SetPanicOnFault(true)
	defer func() {
		debug.SetPanicOnFault(old)
		r := recover()
		if r != nil {
			err = m.fault(r)
		}
		m.release()
		if r != nil && err == nil {
			panic(r)
		}
		faulted = err != nil && r != nil
	}()
	return false, send(blk)
}

// mapping returns a reference to a mapping of p that covers [0, end),
// mapping p or replacing a shorter mapping as needed. It returns nil
// when p is not to be mapped (the caller reads with pread): the platform
// or the bound says no, p was removed or failed to map before, or end
// lies beyond what was reserved in p. An error means mmap failed (p is
// read with pread from then on). The caller holds Store.mu shared, so p
// is not removed meanwhile.
func (ps *packSet) mapping(p *pack, end int64) (*packMap, error) {
	if m := p.mapped.Load(); m != nil && end <= int64(len(m.data)) && m.acquire() {
		m.markUsed()
		return m, nil
	}
	if ps.maxMaps <= 0 {
		return nil, nil
	}
	if ps.maps.Load() >= ps.maxMaps {
		ps.sweepMaps()
	}
	p.mapMu.Lock()
	defer p.mapMu.Unlock()
	cur := p.mapped.Load()
	if cur != nil && end <= int64(len(cur.data)) {
		cur.acquire() // current, so the pack's reference keeps it alive
		cur.markUsed()
		return cur, nil
	}
	if p.noMap || ps.maps.Load() >= ps.maxMaps {
		return nil, nil
	}
	ps.mu.Lock()
	size, appending := p.size, ps.appending(p)
	ps.mu.Unlock()
	if end > size {
		return nil, nil // not an entry of this pack: let the read say so
	}
	if appending {
		size = max(size, ps.mapSpan)
	}
	data, err := unix.Mmap(int(p.f.Fd()), 0, int(size), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		p.noMap = true
		return nil, fmt.Errorf("map %s: %w", packName(p.id), err)
	}
	m := &packMap{pack: p.id, data: data, live: &ps.maps}
	m.refs.Store(2) // the pack's and the caller's
	m.used.Store(true)
	ps.maps.Add(1)
	p.mapped.Store(m)
	if cur != nil {
		cur.release()
	}
	return m, nil
}

// unmap drops the pack's reference to its mapping (it is unmapped when
// the views in flight are done); with forever, the pack is never mapped
// again (it is being closed).
func (p *pack) unmap(forever bool) {
	if m := p.detach(forever); m != nil {
		m.release()
	}
}

// detach takes the pack's current mapping away from it and returns it
// with the pack's reference, for the caller to release.
func (p *pack) detach(forever bool) *packMap {
	p.mapMu.Lock()
	defer p.mapMu.Unlock()
	if forever {
		p.noMap = true
	}
	return p.mapped.Swap(nil)
}

// releaseDetached releases the mappings of removed packs. Removal runs
// under Store.mu held exclusively, and unmapping a mapping with many
// pages mapped takes a while (page tables, TLB shootdowns): the callers
// release after unlocking.
func (ps *packSet) releaseDetached() {
	ps.mu.Lock()
	detached := ps.detached
	ps.detached = nil
	ps.mu.Unlock()
	for _, m := range detached {
		m.release()
	}
}

// sweepMaps drops the mappings of packs not viewed since the previous
// sweep, at most once per sweepInterval; concurrent callers do not wait
// for it.
func (ps *packSet) sweepMaps() {
	if !ps.sweepMu.TryLock() {
		return
	}
	defer ps.sweepMu.Unlock()
	if now := time.Now(); now.Sub(ps.lastSweep) >= ps.sweepEvery {
		ps.lastSweep = now
	} else {
		return
	}
	var idle []*pack
	ps.mu.Lock()
	for _, p := range ps.packs {
		if m := p.mapped.Load(); m != nil && !m.used.Swap(false) {
			idle = append(idle, p)
		}
	}
	ps.mu.Unlock()
	for _, p := range idle {
		p.unmap(false)
	}
}
