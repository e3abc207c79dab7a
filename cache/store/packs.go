package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Block bytes live in pack files, not in Badger: append-only files of
// blocks, written with pwritev and synced with one fdatasync per group
// commit, read with pread or, for serving, through a read-only mapping
// (below). Badger keeps, per block, a small index entry
// (pack, offset, length, CRC32C) in the same transaction as the segment's
// record. Why not Badger's own value log:
//
//   - Badger writes its value log through mmap: on a full disk a write
//     into a not-yet-allocated page is a SIGBUS that kills the process;
//     with pwrite it is ENOSPC, an error for that batch.
//   - Ingest measured ~0.1–0.35x the speed of plain files (page faults on
//     fresh mmapped pages, an msync of the log and of the WAL per commit);
//     packs write like plain files.
//   - Badger learns what is garbage only when compactions meet deleted
//     keys, so its GC lags; the store knows each pack's live bytes
//     exactly, removes a pack the moment its last block goes (LRU
//     eviction usually empties whole packs) and compacts the rest
//     (gc.go).
//   - Reads are one pread into the caller's buffer, or a view of a
//     read-only mapping for serving; nothing is ever written through a
//     mapping.
//
// Why serving reads through mappings (ViewBlock, packmap.go): with
// pread, the kernel copies a block from the page cache into the
// server's buffer and then again from that buffer into the socket; the
// first copy alone was ~10% of a serving process's CPU. A view hands the
// server a slice of a MAP_SHARED, PROT_READ mapping of the pack, which
// it passes to writev: the kernel copies the page cache into the socket
// once. The CRC32C is checked before a view is sent — on its first view
// in this process and again every 10 minutes (checked.go) — so a crash
// or a power cut never makes the store serve a block that fails its
// check, and a page that cannot be read (SIGBUS)
// is caught and handled like a mismatch. Mapped pages are page cache the kernel
// reclaims as it would after a pread (they show as file-backed RSS).
//
// Why writes stay pwritev into unmapped files: writing through a
// mapping turns a full disk into a SIGBUS instead of ENOSPC (Badger's
// problem above), needs the file extended first, and dirties pages the
// kernel writes back on its own schedule rather than at our fdatasync;
// pwritev copies once from the caller's buffers, needs no page-fault per
// fresh page, and fails cleanly. The read mappings coexist with it: the
// page cache is one, so an entry pwritten and then published is visible
// through any mapping that covers it.
//
// Ordering makes this crash-safe: a batch's pack bytes are fdatasync'd
// before the transaction that points at them is even written, so no
// index entry can ever reach the disk ahead of its data. A power cut can
// only lose index entries (Badger's WAL tail), leaving unreferenced bytes
// in a pack: dead space that compaction reclaims, never a wrong block.
//
// A pack entry is a 96-byte header and the payload (IV and ciphertext):
//
//	[0:4] magic "OPB1"  [4:8] CRC32C of the payload  [8:12] payload length
//	[12:14] block index  [14] CryptoAlgoId  [15] flags  [16] ID length
//	[17:81] segment ID (zero-padded)  [81:96] zero
//
// The header names the block, so compaction can walk a pack and ask the
// index whether each entry is still the live copy.

const (
	packHeader = 96
	packMagic  = "OPB1"
	packSuffix = ".pack"
)

// crc32c is CRC32C, hardware-accelerated on amd64 and arm64 (crc32
// caches the table).
func crc32c(b []byte) uint32 { return crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)) }

// packEntry is where a block lives (the Badger value of a block key).
type packEntry struct {
	crypto  byte
	flags   byte // metaVerified, metaPadded
	pack    uint32
	offset  int64 // of the header
	length  uint32
	payload uint32 // CRC32C of the payload
}

const (
	entryFormat = 1
	entrySize   = 24
)

func (e *packEntry) marshal() []byte {
	b := make([]byte, entrySize)
	b[0], b[1], b[2] = entryFormat, e.crypto, e.flags
	binary.BigEndian.PutUint32(b[4:], e.pack)
	binary.BigEndian.PutUint64(b[8:], uint64(e.offset))
	binary.BigEndian.PutUint32(b[16:], e.length)
	binary.BigEndian.PutUint32(b[20:], e.payload)
	return b
}

func (e *packEntry) unmarshal(b []byte) error {
	if len(b) != entrySize || b[0] != entryFormat {
		return fmt.Errorf("block index entry of %d bytes, format %d", len(b), firstByte(b))
	}
	e.crypto, e.flags = b[1], b[2]
	e.pack = binary.BigEndian.Uint32(b[4:])
	e.offset = int64(binary.BigEndian.Uint64(b[8:]))
	e.length = binary.BigEndian.Uint32(b[16:])
	e.payload = binary.BigEndian.Uint32(b[20:])
	if e.length < ivSize+16 || e.length > MaxBlockBytes || (e.length-ivSize)%16 != 0 {
		return fmt.Errorf("block index entry with a payload of %d bytes", e.length)
	}
	return nil
}

// span is what the entry occupies in its pack.
func (e *packEntry) span() int64 { return packHeader + int64(e.length) }

// fillPackHeader writes the header of a pack entry into h.
func fillPackHeader(h []byte, segmentID []byte, index uint32, crypto, flags byte, length, crc uint32) {
	clear(h[:packHeader])
	copy(h, packMagic)
	binary.BigEndian.PutUint32(h[4:], crc)
	binary.BigEndian.PutUint32(h[8:], length)
	binary.BigEndian.PutUint16(h[12:], uint16(index))
	h[14], h[15], h[16] = crypto, flags, byte(len(segmentID))
	copy(h[17:81], segmentID)
}

// packHeaderInfo is a decoded pack-entry header.
type packHeaderInfo struct {
	segmentID []byte
	index     uint32
	crypto    byte
	flags     byte
	length    uint32
	crc       uint32
}

func parsePackHeader(h []byte) (packHeaderInfo, error) {
	if len(h) < packHeader || string(h[:4]) != packMagic {
		return packHeaderInfo{}, errors.New("not a pack entry")
	}
	n := int(h[16])
	info := packHeaderInfo{
		crc:    binary.BigEndian.Uint32(h[4:]),
		length: binary.BigEndian.Uint32(h[8:]),
		index:  uint32(binary.BigEndian.Uint16(h[12:])),
		crypto: h[14],
		flags:  h[15],
	}
	if validID(h[17:17+min(n, 64)]) != nil || info.length > MaxBlockBytes {
		return packHeaderInfo{}, errors.New("pack entry header out of range")
	}
	info.segmentID = append([]byte(nil), h[17:17+n]...)
	return info, nil
}

// pack is one pack file.
type pack struct {
	id   uint32
	f    *os.File
	size int64 // bytes written (the next entry goes here, if current)
	live int64 // bytes of live entries (headers included)
	// pending is bytes written whose index transaction has not settled
	// yet: a pack with pending bytes is never removed.
	pending int64

	// The read-only mapping views are served from (packmap.go).
	mapMu  sync.Mutex              // creating or replacing the mapping
	mapped atomic.Pointer[packMap] // the current mapping, nil until a view
	noMap  bool                    // never map (removed, closed, mmap failed); under mapMu
}

// packSet is the store's pack files. Putters reserve space and write
// their blocks themselves, in parallel; the writer syncs, indexes, and
// removes. Readers look up packs under Store.mu (shared), and removal
// takes Store.mu exclusively, so a pack is never closed under a reader;
// a view's mapping outlives the pack's removal by reference counting,
// until its send returns (packmap.go).
type packSet struct {
	dir     string
	maxSize int64
	laneMu  []sync.Mutex // one reservation (or rotation) at a time per lane
	mu      sync.Mutex   // guards the map, the lanes and the counters (held briefly)
	packs   map[uint32]*pack
	// lanes are the packs being appended to. Several, so that a group
	// commit's fdatasyncs run in parallel on different files, as plain
	// files' would.
	lanes  []*pack
	nextID uint32
	// maybeEmpty are packs whose live or pending bytes fell to zero since
	// the writer last looked: the only ones worth checking for removal.
	maybeEmpty map[uint32]bool

	// Mappings for views (packmap.go).
	maps       atomic.Int64 // live mappings, current or held by views only
	maxMaps    int64        // bound on maps (0: never map)
	mapSpan    int64        // how far a pack still appended to is mapped
	sweepMu    sync.Mutex   // one sweep of idle mappings at a time
	lastSweep  time.Time    // under sweepMu
	sweepEvery time.Duration
	detached   []*packMap // of removed packs, to release (under mu)
	checked    *checkedSet
}

func packName(id uint32) string { return fmt.Sprintf("%08d%s", id, packSuffix) }

// openPacks opens the existing packs (read-only: nothing is ever appended
// to a pack after a restart, so a torn tail is never extended).
func openPacks(dir string, maxSize int64, lanes int) (*packSet, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("packs: %w", err)
	}
	ps := &packSet{dir: dir, maxSize: maxSize, packs: make(map[uint32]*pack), nextID: 1,
		lanes: make([]*pack, max(lanes, 1)), laneMu: make([]sync.Mutex, max(lanes, 1)), maybeEmpty: make(map[uint32]bool),
		mapSpan: maxSize, sweepEvery: sweepInterval, checked: newCheckedSet()}
	if mapReads {
		ps.maxMaps = maxMappedPacks
	}
	names, err := filepath.Glob(filepath.Join(dir, "*"+packSuffix))
	if err != nil {
		return nil, fmt.Errorf("packs: %w", err)
	}
	for _, name := range names {
		id, err := strconv.ParseUint(strings.TrimSuffix(filepath.Base(name), packSuffix), 10, 32)
		if err != nil {
			continue
		}
		f, err := os.Open(name)
		if err != nil {
			ps.close()
			return nil, fmt.Errorf("packs: %w", err)
		}
		info, err := f.Stat()
		if err != nil {
			f.Close()
			ps.close()
			return nil, fmt.Errorf("packs: %w", err)
		}
		ps.packs[uint32(id)] = &pack{id: uint32(id), f: f, size: info.Size()}
		ps.maybeEmpty[uint32(id)] = true // until the open-time count says otherwise
		ps.nextID = max(ps.nextID, uint32(id)+1)
	}
	return ps, nil
}

// close closes the packs' files and drops their mappings, which are
// unmapped as soon as the views in flight are done.
func (ps *packSet) close() error {
	ps.mu.Lock()
	packs := make([]*pack, 0, len(ps.packs))
	for _, p := range ps.packs {
		packs = append(packs, p)
	}
	clear(ps.packs)
	clear(ps.lanes)
	ps.mu.Unlock()
	var errs []error
	for _, p := range packs {
		p.unmap(true) // outside ps.mu: mapping takes mapMu, then ps.mu
		errs = append(errs, p.f.Close())
	}
	ps.releaseDetached()
	return errors.Join(errs...)
}

// get returns a pack by ID (nil if there is none).
func (ps *packSet) get(id uint32) *pack {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return ps.packs[id]
}

// reserve sets aside n bytes at the end of a lane's pack (key picks the
// lane), starting a new
// pack if it would grow past its size, and counts them as pending until
// settle. Callers then write there concurrently (pwrite): the kernel
// copies in parallel, as it would for plain files.
func (ps *packSet) reserve(n int64, key byte) (*pack, int64, error) {
	// A segment's blocks go to one lane (by a byte of its ID), so that
	// evicting a segment empties packs rather than thinning all of them.
	lane := int(key) % len(ps.lanes)
	ps.laneMu[lane].Lock()
	defer ps.laneMu[lane].Unlock()
	ps.mu.Lock()
	p := ps.lanes[lane]
	ps.mu.Unlock()
	if p == nil || p.size+n > ps.maxSize && p.size > 0 {
		var err error
		if p, err = ps.rotate(lane); err != nil {
			return nil, 0, err
		}
	}
	ps.mu.Lock()
	off := p.size
	p.size += n
	p.pending += n
	ps.mu.Unlock()
	return p, off, nil
}

// writeAt writes entries back to back at off (space from reserve).
func (p *pack) writeAt(entries [][]byte, off int64) error {
	// pwritev takes at most IOV_MAX (1024) buffers and may write less than
	// asked: loop.
	iov := append([][]byte(nil), entries...)
	for len(iov) > 0 {
		n, err := unix.Pwritev(int(p.f.Fd()), iov[:min(len(iov), 1024)], off)
		if err != nil {
			return fmt.Errorf("write %s: %w", packName(p.id), err)
		}
		off += int64(n)
		for n > 0 {
			if n >= len(iov[0]) {
				n -= len(iov[0])
				iov = iov[1:]
			} else {
				iov[0] = iov[0][n:]
				n = 0
			}
		}
	}
	return nil
}

// append reserves room for entries, writes them and syncs them; it
// returns the pack and the offset of each. The bytes stay pending until
// settle.
func (ps *packSet) append(entries [][]byte) (uint32, []int64, error) {
	var total int64
	for _, e := range entries {
		total += int64(len(e))
	}
	p, off, err := ps.reserve(total, 0)
	if err != nil {
		return 0, nil, err
	}
	if err := p.writeAt(entries, off); err != nil {
		ps.settle(p.id, total, 0)
		return 0, nil, err
	}
	if err := ps.sync(p.id); err != nil {
		ps.settle(p.id, total, 0)
		return 0, nil, err
	}
	offsets := make([]int64, len(entries))
	for i, e := range entries {
		offsets[i] = off
		off += int64(len(e))
	}
	return p.id, offsets, nil
}

// sync makes a pack's written bytes durable.
func (ps *packSet) sync(id uint32) error {
	p := ps.get(id)
	if p == nil {
		return fmt.Errorf("sync %s: no such pack", packName(id))
	}
	if err := unix.Fdatasync(int(p.f.Fd())); err != nil {
		return fmt.Errorf("sync %s: %w", packName(id), err)
	}
	return nil
}

// settle ends the pending state of written bytes, of which live became
// live (the rest is dead: discarded or failed).
func (ps *packSet) settle(id uint32, written, live int64) {
	ps.mu.Lock()
	if p := ps.packs[id]; p != nil {
		p.pending -= written
		p.live += live
		ps.noteEmpty(p)
	}
	ps.mu.Unlock()
}

// noteEmpty remembers a pack with nothing live or pending (under mu).
func (ps *packSet) noteEmpty(p *pack) {
	if p.live == 0 && p.pending == 0 {
		ps.maybeEmpty[p.id] = true
	}
}

// takeEmpty returns the packs that hold nothing live or pending and are
// not being appended to.
func (ps *packSet) takeEmpty() []uint32 {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	var out []uint32
	for id := range ps.maybeEmpty {
		p := ps.packs[id]
		switch {
		case p == nil || p.live != 0 || p.pending != 0:
			delete(ps.maybeEmpty, id)
		case !ps.appending(p):
			delete(ps.maybeEmpty, id)
			out = append(out, id)
		}
	}
	return out
}

// rotate starts a new pack in a lane (under its laneMu).
func (ps *packSet) rotate(lane int) (*pack, error) {
	ps.mu.Lock()
	id := ps.nextID
	ps.nextID++
	ps.mu.Unlock()
	f, err := os.OpenFile(filepath.Join(ps.dir, packName(id)), os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o640)
	if err != nil {
		return nil, fmt.Errorf("new pack: %w", err)
	}
	if err := syncDir(ps.dir); err != nil {
		f.Close()
		return nil, fmt.Errorf("new pack: %w", err)
	}
	p := &pack{id: id, f: f}
	ps.mu.Lock()
	ps.packs[id] = p
	ps.lanes[lane] = p
	ps.mu.Unlock()
	return p, nil
}

// addLive moves a pack's live bytes (deletes, recount).
func (ps *packSet) addLive(id uint32, n int64) {
	ps.mu.Lock()
	if p := ps.packs[id]; p != nil {
		p.live += n
		ps.noteEmpty(p)
	}
	ps.mu.Unlock()
}

// seal closes the lanes' packs to appends where at least deadFraction of
// a pack is dead and nothing is pending, so that it can be removed or
// compacted like any other (the next put there starts a new pack).
func (ps *packSet) seal(deadFraction float64) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	for i, p := range ps.lanes {
		if p != nil && p.size > 0 && p.pending == 0 && float64(p.size-p.live) >= deadFraction*float64(p.size) {
			ps.lanes[i] = nil
			ps.noteEmpty(p)
		}
	}
}

// appending reports whether p is a lane's pack (under mu).
func (ps *packSet) appending(p *pack) bool {
	for _, l := range ps.lanes {
		if l == p {
			return true
		}
	}
	return false
}

// packStat is a pack's figures for GC.
type packStat struct {
	id                  uint32
	size, live, pending int64
	current             bool
}

func (ps *packSet) stats() []packStat {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	out := make([]packStat, 0, len(ps.packs))
	for _, p := range ps.packs {
		out = append(out, packStat{id: p.id, size: p.size, live: p.live, pending: p.pending, current: ps.appending(p)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}

// remove deletes a pack file. The caller holds Store.mu exclusively and
// has made the deletes that emptied the pack durable; it calls
// releaseDetached once it has let go of Store.mu.
func (ps *packSet) remove(id uint32) error {
	ps.mu.Lock()
	p := ps.packs[id]
	delete(ps.packs, id)
	for i, l := range ps.lanes {
		if l == p {
			ps.lanes[i] = nil
		}
	}
	ps.mu.Unlock()
	if p == nil {
		return nil
	}
	// The mapping is released later (releaseDetached), and views in
	// flight keep the bytes until their send returns.
	if m := p.detach(true); m != nil {
		ps.mu.Lock()
		ps.detached = append(ps.detached, m)
		ps.mu.Unlock()
	}
	p.f.Close()
	if err := os.Remove(filepath.Join(ps.dir, packName(id))); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", packName(id), err)
	}
	return nil
}

// readPayload reads an entry's payload into buf and checks its CRC32C.
func (p *pack) readPayload(e *packEntry, buf []byte) error {
	n, err := p.f.ReadAt(buf[:e.length], e.offset+packHeader)
	if n < int(e.length) {
		return fmt.Errorf("%s: read %d of %d bytes at %d: %v", packName(p.id), n, e.length, e.offset, err)
	}
	if crc32c(buf[:e.length]) != e.payload {
		return fmt.Errorf("%s: CRC32C mismatch at %d", packName(p.id), e.offset)
	}
	return nil
}

// scan walks a pack's entries in order, calling fn with each entry's
// offset and header. Entries start on 16-byte boundaries (headers and
// payloads are multiples of 16); where no entry parses — a write that
// failed or was torn by a crash — it looks for the next header whose
// payload matches its CRC. It stops when fn returns an error.
func (p *pack) scan(fn func(offset int64, h packHeaderInfo) error) error {
	var hdr [packHeader]byte
	payload := make([]byte, MaxBlockBytes)
	for off := int64(0); off+packHeader <= p.size; {
		if _, err := p.f.ReadAt(hdr[:], off); err != nil {
			return nil
		}
		h, err := parsePackHeader(hdr[:])
		if err == nil && off+packHeader+int64(h.length) <= p.size {
			// Trust a header without checking its payload only where the
			// previous entry ended; after a gap, the CRC must match too.
			if err := fn(off, h); err != nil {
				return err
			}
			off += packHeader + int64(h.length)
			continue
		}
		off = p.resync(off+16, payload)
	}
	return nil
}

// resync finds the next offset from off at which a complete entry with a
// matching CRC starts (p.size if none).
func (p *pack) resync(off int64, payload []byte) int64 {
	var hdr [packHeader]byte
	for ; off+packHeader <= p.size; off += 16 {
		if _, err := p.f.ReadAt(hdr[:4], off); err != nil || string(hdr[:4]) != packMagic {
			continue
		}
		if _, err := p.f.ReadAt(hdr[:], off); err != nil {
			continue
		}
		h, err := parsePackHeader(hdr[:])
		if err != nil || off+packHeader+int64(h.length) > p.size {
			continue
		}
		if _, err := p.f.ReadAt(payload[:h.length], off+packHeader); err == nil && crc32c(payload[:h.length]) == h.crc {
			return off
		}
	}
	return p.size
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
