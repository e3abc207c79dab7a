package store

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/dgraph-io/badger/v4"
	"golang.org/x/sys/unix"
)

// Pack GC. Evicting or deleting a block removes its index entry and
// subtracts its bytes from its pack's live count (exact, unlike Badger's
// discard statistics). A pack with nothing live left is removed at once
// (writer.go: dropEmptyPacks) — under LRU eviction that is most of the
// space. Partly live packs are compacted: their live entries are copied
// to a lane's pack and re-indexed, then the emptied pack goes. A GC pass
// compacts the emptiest packs while the pack files exceed the live
// entries by more than 5%, plus a pack per lane and one more (the lanes'
// packs are still filling; at most another 10%), so disk use stays within
// 1.2x of the live data; under low disk (force) it compacts every pack at
// least 10% dead.

type relocation struct {
	segmentID []byte
	index     uint32
	offset    int64
	entry     packEntry
	raw       []byte // header and payload, as in the old pack
	corrupt   bool
}

func (s *Store) collectGarbage(ctx context.Context, force bool) {
	s.gcMu.Lock()
	defer s.gcMu.Unlock()
	start := time.Now()
	var compacted int64
	defer func() {
		s.stats.add(func(c *counters) {
			c.gcRuns += compacted
			c.evictedSinceGC = 0
		})
		s.refreshDisk()
		if compacted > 0 {
			s.log.Debug("store: packs compacted", "packs", compacted, "force", force, "took", time.Since(start))
		}
	}()
	if err := s.do(ctx, func() error {
		// A lane's pack cannot be compacted while it is appended to: close
		// it to appends once a quarter of it is dead (a tenth on low disk).
		if force {
			s.packs.seal(0.1)
		} else {
			s.packs.seal(0.25)
		}
		s.dropEmptyPacks()
		return nil
	}); err != nil {
		return
	}
	tried := make(map[uint32]bool)
	for ctx.Err() == nil {
		var size, live int64
		var pick *packStat
		stats := s.packs.stats()
		for i := range stats {
			p := &stats[i]
			size += p.size
			live += p.live
			if p.current || p.size == 0 || tried[p.id] {
				continue
			}
			if pick == nil || p.live*pick.size < pick.live*p.size {
				pick = p
			}
		}
		slack := live/20 + min(int64(s.tune.lanes+1)*s.tune.packSize, live/10)
		if pick == nil || (!force && size <= live+slack) || (force && pick.live*10 >= pick.size*9) {
			return
		}
		tried[pick.id] = true
		if err := s.compactPack(ctx, pick.id); err != nil {
			s.log.Warn("store: compacting a pack", "pack", packName(pick.id), "err", err)
			return
		}
		compacted++
	}
}

// compactPack copies the live entries of a pack to the current one, in
// chunks so that puts are never held up for long. The pack is read
// through its own descriptor, so it may be removed meanwhile.
func (s *Store) compactPack(ctx context.Context, id uint32) error {
	f, err := os.Open(filepath.Join(s.packs.dir, packName(id)))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return err
	}
	old := &pack{id: id, f: f, size: info.Size()}
	var headers []relocation
	err = old.scan(func(offset int64, h packHeaderInfo) error {
		headers = append(headers, relocation{segmentID: h.segmentID, index: h.index, offset: offset,
			entry: packEntry{crypto: h.crypto, flags: h.flags, length: h.length, payload: h.crc}})
		return nil
	})
	if err != nil {
		return err
	}
	for len(headers) > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		var chunk []relocation
		var n int
		for len(headers) > 0 && (len(chunk) == 0 || n < s.tune.maxBatchBytes) {
			r := headers[0]
			headers = headers[1:]
			r.raw = make([]byte, r.entry.span())
			if _, err := f.ReadAt(r.raw, r.offset); err != nil {
				return err
			}
			r.corrupt = crc32c(r.raw[packHeader:]) != r.entry.payload
			n += len(r.raw)
			chunk = append(chunk, r)
		}
		if err := s.checkReserve(uint64(n)); err != nil {
			return err
		}
		if err := s.do(ctx, func() error { return s.relocate(id, chunk) }); err != nil {
			return err
		}
	}
	return nil
}

// relocate (writer) moves the entries of a chunk that are still live from
// pack oldID to the current pack and points their index entries there.
func (s *Store) relocate(oldID uint32, chunk []relocation) error {
	txn := s.db.NewTransaction(true)
	defer txn.Discard()
	var keep []*relocation
	var entries [][]byte
	for i := range chunk {
		r := &chunk[i]
		e, err := getEntry(txn, r.segmentID, r.index)
		if err != nil || e.pack != oldID || e.offset != r.offset {
			continue // no longer the live copy
		}
		if r.corrupt {
			s.scheduleRepair(r.segmentID, r.index)
			continue
		}
		keep = append(keep, r)
		entries = append(entries, r.raw)
	}
	if len(keep) == 0 {
		return nil
	}
	newID, offsets, err := s.packs.append(entries) // written and synced
	if err != nil {
		return err
	}
	var written int64
	for _, e := range entries {
		written += int64(len(e))
	}
	settled := false
	defer func() {
		if !settled {
			s.packs.settle(newID, written, 0)
		}
	}()
	var span int64
	for i, r := range keep {
		e := r.entry
		e.pack, e.offset = newID, offsets[i]
		span += e.span()
		entry := badger.NewEntry(blockKey(r.segmentID, r.index), e.marshal()).WithMeta(e.flags)
		if err := txn.SetEntry(entry); err != nil {
			return err
		}
	}
	if err := txn.Commit(); err != nil {
		return commitError(err)
	}
	s.badgerDirty = true
	s.packs.settle(newID, written, span)
	settled = true
	s.packs.addLive(oldID, -span)
	return nil
}

// refreshDisk measures the filesystem and the store directory and
// recomputes the effective limit.
func (s *Store) refreshDisk() {
	total, _ := dirUsage(s.opt.Dir)
	space, err := s.opt.Statfs(s.opt.Dir)
	s.stats.mu.Lock()
	defer s.stats.mu.Unlock()
	s.stats.diskBytes = total
	if err != nil {
		return
	}
	s.stats.fsSize, s.stats.fsFree = space.Total, space.Free
	limit := s.opt.LimitBytes
	if s.opt.LimitPercent > 0 {
		byPercent := int64(float64(space.Total) * s.opt.LimitPercent / 100)
		if limit == 0 || byPercent < limit {
			limit = byPercent
		}
	}
	s.stats.limit = limit
}

// statfs is the real Options.Statfs.
func statfs(dir string) (DiskSpace, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return DiskSpace{}, err
	}
	return DiskSpace{Total: st.Blocks * uint64(st.Bsize), Free: st.Bavail * uint64(st.Bsize)}, nil
}

// dirUsage is the space the store's files take on disk (allocated
// blocks, so the sparse tails Badger pre-allocates do not count), in total
// and for the packs alone.
func dirUsage(dir string) (total, packs int64) {
	for _, d := range []string{dir, filepath.Join(dir, "packs")} {
		entries, err := os.ReadDir(d)
		if err != nil {
			continue
		}
		for _, e := range entries {
			info, err := e.Info()
			if err != nil || !info.Mode().IsRegular() {
				continue
			}
			n := info.Size()
			if st, ok := info.Sys().(*syscall.Stat_t); ok {
				n = st.Blocks * 512
			}
			total += n
			if strings.HasSuffix(e.Name(), packSuffix) {
				packs += n
			}
		}
	}
	return total, packs
}
