package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/outpost-appliance/outpost/peerdist/pccrc"
)

// One goroutine, the writer, makes every change to the store: block puts
// (gathered into group commits), segment changes, access-time flushes,
// evictions, repairs and pack removal. Records are read-modify-written,
// and with a single writer no update is ever lost and Badger needs no
// conflict detection. Callers do the expensive part (decrypting, hashing,
// encrypting) in their own goroutines before handing a block over.
//
// Durability: each putter writes its block into space reserved in the
// current pack (in parallel, like plain files); the writer then
// fdatasyncs the pack once for the whole batch and only then commits the
// transaction that indexes the blocks. Badger's own log
// (SyncWrites off) is synced at most a second later, on Sync, and before
// any pack file is removed: a power cut loses at most the last second of
// index updates, and the store stays consistent (packs.go).

// Block-key UserMeta bits: what the record also knows, kept on the key so
// the open-time check can verify records from keys alone.
const (
	metaVerified = 1 << 0
	metaPadded   = 1 << 1
)

// badgerSyncInterval bounds how long committed index updates may wait
// for Badger's log to be synced.
const badgerSyncInterval = time.Second

type putRequest struct {
	segmentID []byte
	index     uint32
	entry     packEntry // where the caller wrote the block (not yet synced)
	userMeta  byte
	// What the caller saw when it prepared the block. If the record has
	// changed by commit time (the segment was deleted, re-offered, or its
	// hashes arrived), the block is discarded: it no longer fits.
	version     pccrc.Version
	size        uint32
	hashesKnown bool
	// sync marks a Sync request instead of a block: closed once every
	// block queued before it has been committed and made durable.
	sync chan struct{}
}

type op struct {
	fn   func() error
	done chan error
}

// blockRef names a block to repair (drop after a failed check).
type blockRef struct {
	segmentID []byte
	index     uint32
}

// syncing is a group commit whose packs are being synced.
type syncing struct {
	batch []*putRequest
	done  chan error
}

func (s *Store) writeLoop() {
	defer s.background.Done()
	defer close(s.writerDone)
	flush := time.NewTicker(s.opt.AccessFlushInterval)
	defer flush.Stop()
	syncTick := time.NewTicker(badgerSyncInterval)
	defer syncTick.Stop()
	s.evictOverLimit() // the limit may have been lowered while the store was closed
	s.dropEmptyPacks()
	// Group commits in flight, oldest first: their fdatasyncs overlap (as
	// concurrent writers' fsyncs of plain files would) and their index
	// transactions commit in order as the syncs complete.
	var inflight []*syncing
	start := func(req *putRequest) {
		batch := s.gather([]*putRequest{req})
		sc := &syncing{batch: batch, done: make(chan error, 1)}
		go func() { sc.done <- s.syncPacks(batch) }()
		inflight = append(inflight, sc)
	}
	finishOldest := func(err error) {
		s.commitPuts(inflight[0].batch, err)
		inflight[0] = nil
		inflight = inflight[1:]
	}
	fullBatch := max(1, s.tune.maxBatchBytes/pccrc.BlockSize)
	for {
		// With no commit in flight, take what is queued at once (low
		// latency when idle). With some in flight, start another only for
		// a full batch (so batches grow under load rather than syncs
		// multiplying), and never more than syncDepth.
		puts := s.puts
		if len(inflight) >= s.tune.syncDepth || len(inflight) > 0 && len(s.puts) < fullBatch {
			puts = nil
		}
		var oldest chan error
		if len(inflight) > 0 {
			oldest = inflight[0].done
		}
		select {
		case <-s.stop:
			// Index what is queued: Close loses nothing PutBlock accepted.
			for drained := false; !drained; {
				select {
				case req := <-s.puts:
					start(req)
				default:
					drained = true
				}
			}
			for len(inflight) > 0 {
				finishOldest(<-inflight[0].done)
			}
			s.flushAccess()
			s.syncBadger()
			return
		case req := <-puts:
			start(req)
		case <-s.batchReady:
			// A full batch is queued: the loop takes it if it may.
		case err := <-oldest:
			finishOldest(err)
		case o := <-s.ops:
			o.done <- o.fn()
		case ref := <-s.repairs:
			s.repairBlock(ref)
		case <-flush.C:
			s.flushAccess()
		case <-s.access.full:
			s.flushAccess()
		case <-syncTick.C:
			s.syncBadger()
		}
		s.evictOverLimit()
		s.dropEmptyPacks()
	}
}

// do runs fn in the writer goroutine, serialized with every other change.
func (s *Store) do(ctx context.Context, fn func() error) error {
	o := &op{fn: fn, done: make(chan error, 1)}
	select {
	case s.ops <- o:
	case <-s.stop:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-o.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// queuePut hands a prepared block to the writer. It waits only for room
// in the queue (backpressure), not for the commit.
func (s *Store) queuePut(ctx context.Context, req *putRequest) error {
	select {
	case s.puts <- req:
		if len(s.puts) >= s.tune.maxBatchBytes/pccrc.BlockSize {
			select {
			case s.batchReady <- struct{}{}:
			default:
			}
		}
		return nil
	case <-s.stop:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Sync waits until every block queued by PutBlock or PutPlainBlock before
// the call has been committed and is durable: on disk, and visible to
// ReadBlock and Segment. It fails if any of those commits failed (the
// blocks concerned are not stored; the log says why).
func (s *Store) Sync(ctx context.Context) error {
	failed := s.failedPuts.Load()
	req := &putRequest{sync: make(chan struct{})}
	if err := s.queuePut(ctx, req); err != nil {
		return fmt.Errorf("store: sync: %w", err)
	}
	select {
	case <-req.sync:
	case <-s.writerDone:
		return fmt.Errorf("store: sync: %w", ErrClosed)
	case <-ctx.Done():
		return fmt.Errorf("store: sync: %w", ctx.Err())
	}
	if n := s.failedPuts.Load() - failed; n > 0 {
		return fmt.Errorf("store: sync: %d queued blocks were not stored: %w", n, ErrCommit)
	}
	return nil
}

// gather adds the puts already queued to the batch, up to the profile's
// batch size or a Sync marker. Callers do not wait for commits, so while
// one commit syncs, the next batch queues up: one sync serves many
// blocks (group commit).
func (s *Store) gather(batch []*putRequest) []*putRequest {
	if batch[0].sync != nil {
		return batch
	}
	n := batch[0].entry.span()
	for n < int64(s.tune.maxBatchBytes) {
		select {
		case req := <-s.puts:
			batch = append(batch, req)
			if req.sync != nil {
				return batch
			}
			n += req.entry.span()
		default:
			return batch
		}
	}
	return batch
}

// change is a record before and after a transaction, for accounting and
// the change feed once the transaction has committed.
type change struct {
	id     []byte
	before *record // nil: created
	after  *record // nil: removed
}

// commitPuts ends a group commit (writer): once the packs the blocks were
// written to are synced, index the blocks that still fit their segments,
// in one transaction with the segments' records.
func (s *Store) commitPuts(batch []*putRequest, syncErr error) {
	var blocks []*putRequest
	for _, req := range batch {
		if req.sync == nil {
			blocks = append(blocks, req)
		}
	}
	defer func() {
		synced := false
		for _, req := range batch {
			if req.sync != nil {
				if !synced {
					s.syncBadger()
					synced = true
				}
				close(req.sync)
			}
		}
	}()
	if len(blocks) == 0 {
		return
	}
	settled := make([]bool, len(blocks))
	settle := func(i int, live bool) {
		if !settled[i] {
			settled[i] = true
			s.pending.remove(blocks[i].segmentID, blocks[i].index, blocks[i].entry)
			e := &blocks[i].entry
			var liveBytes int64
			if live {
				liveBytes = e.span()
			}
			s.packs.settle(e.pack, e.span(), liveBytes)
		}
	}
	fail := func(err error) {
		var n int
		for i := range blocks {
			if !settled[i] {
				settle(i, false)
				n++
			}
		}
		s.failedPuts.Add(int64(n))
		s.log.Error("store: blocks not stored", "blocks", n, "first_segment", hexID(blocks[0].segmentID),
			"first_block", blocks[0].index, "err", err)
	}
	// The bytes were made durable (syncPacks) before the index that points
	// at them is even written.
	if syncErr != nil {
		fail(syncErr)
		return
	}

	txn := s.db.NewTransaction(true)
	defer txn.Discard()
	changes := make(map[string]*change)
	var stored []int
	var discarded int64
	for i, req := range blocks {
		c := changes[string(req.segmentID)]
		if c == nil {
			rec, err := getRecord(txn, req.segmentID)
			if err != nil {
				discarded++ // deleted or evicted since the block was queued
				settle(i, false)
				continue
			}
			before := *rec
			c = &change{id: req.segmentID, before: &before, after: rec}
			changes[string(req.segmentID)] = c
		}
		rec := c.after
		if rec.version != req.version || rec.size != req.size || rec.hashesKnown != req.hashesKnown {
			discarded++
			settle(i, false)
			continue
		}
		if rec.held.Has(req.index) {
			settle(i, false) // queued twice
			continue
		}
		entry := badger.NewEntry(blockKey(req.segmentID, req.index), req.entry.marshal()).WithMeta(req.userMeta)
		if err := txn.SetEntry(entry); err != nil {
			fail(err)
			return
		}
		stored = append(stored, i)
		rec.held.Set(req.index)
		if req.userMeta&metaVerified != 0 {
			rec.verified.Set(req.index)
		}
		if req.userMeta&metaPadded != 0 {
			rec.padded.Set(req.index)
		}
	}
	if discarded > 0 {
		s.stats.add(func(c *counters) { c.discardedPuts += discarded })
	}
	if len(stored) == 0 {
		return
	}
	for _, c := range changes {
		if *c.before != *c.after {
			if err := txn.Set(recordKey(c.id), c.after.marshal()); err != nil {
				fail(err)
				return
			}
		}
	}
	if err := txn.Commit(); err != nil {
		// The pack bytes stay unreferenced: dead space for compaction.
		fail(commitError(err))
		return
	}
	for _, i := range stored {
		settle(i, true)
	}
	s.badgerDirty = true
	s.stats.add(func(c *counters) {
		c.commits++
		c.committedBlocks += int64(len(stored))
	})
	for _, c := range changes {
		if *c.before != *c.after {
			s.applied(*c, "")
		}
	}
}

// syncPacks fdatasyncs the packs a batch's blocks were written to,
// concurrently.
func (s *Store) syncPacks(batch []*putRequest) error {
	packs := make(map[uint32]bool)
	for _, req := range batch {
		if req.sync == nil {
			packs[req.entry.pack] = true
		}
	}
	errs := make(chan error, len(packs))
	for id := range packs {
		go func() { errs <- s.packs.sync(id) }()
	}
	var all []error
	for range packs {
		all = append(all, <-errs)
	}
	return errors.Join(all...)
}

// syncBadger makes committed index changes durable (writer only).
func (s *Store) syncBadger() {
	if !s.badgerDirty {
		return
	}
	if err := s.db.Sync(); err != nil {
		s.log.Error("store: syncing the index", "err", err)
		return
	}
	s.badgerDirty = false
}

// checkReserve refuses a write that would leave less than the reserve
// free (see Store.reserve). statfs costs a few microseconds, so with more
// than a GiB of headroom the figure is reused for up to 100 ms or a
// quarter of the headroom, whichever comes first; nearer the reserve,
// every write asks the filesystem.
func (s *Store) checkReserve(writing uint64) error {
	fs := &s.freeSpace
	fs.mu.Lock()
	defer fs.mu.Unlock()
	for fresh := false; ; fresh = true {
		headroom := fs.free - min(fs.free, s.reserve)
		if fresh || time.Since(fs.at) > 100*time.Millisecond || headroom < 1<<30 || fs.written+writing > headroom/4 {
			space, err := s.opt.Statfs(s.opt.Dir)
			if err != nil {
				// Without figures, let the write try: pack writes report
				// ENOSPC, and the reserve is a guard, not the only check.
				s.log.Warn("store: statfs failed", "dir", s.opt.Dir, "err", err)
				return nil
			}
			fs.free, fs.at, fs.written, fresh = space.Free, time.Now(), 0, true
		}
		if fs.free >= s.reserve+fs.written+writing {
			fs.written += writing
			return nil
		}
		if fresh {
			s.kickMaintenance()
			return fmt.Errorf("%w: %d bytes free on %s, writes stop at %d (reserve for the index's pre-allocated files)",
				ErrDiskFull, fs.free, s.opt.Dir, s.reserve)
		}
	}
}

// commitError turns a failed commit into the error callers test for.
func commitError(err error) error {
	if errors.Is(err, syscall.ENOSPC) || strings.Contains(err.Error(), "no space left on device") {
		return fmt.Errorf("%w: %v", ErrDiskFull, err)
	}
	return fmt.Errorf("commit: %w", err)
}

// applied updates the accounting and publishes the change-feed event of
// a committed change. reason says why a segment stopped being held.
func (s *Store) applied(c change, reason Reason) {
	s.shapes.update(c.id, c.after)
	s.stats.account(c.before, c.after)
	wasHeld := c.before != nil && c.before.held.Len() > 0
	isHeld := c.after != nil && c.after.held.Len() > 0
	switch {
	case !wasHeld && isHeld:
		s.feed.publish(Event{Kind: SegmentAdded, SegmentID: c.id, Version: c.after.version, HeldBlocks: c.after.held.Len()})
	case wasHeld && !isHeld:
		kind := SegmentDeleted
		switch reason {
		case ReasonLimit, ReasonMaxAge, ReasonLowDisk:
			kind = SegmentEvicted
		}
		s.feed.publish(Event{Kind: kind, SegmentID: c.id, Version: c.before.version, Reason: reason})
	}
}

// getRecord reads a segment's record; ErrNotFound if there is none.
func getRecord(txn *badger.Txn, id []byte) (*record, error) {
	item, err := txn.Get(recordKey(id))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("read record: %w", err)
	}
	rec := new(record)
	err = item.Value(rec.unmarshal)
	if err != nil {
		return nil, fmt.Errorf("segment %s: %w", hexID(id), err)
	}
	return rec, nil
}

// getEntry reads a block's index entry; ErrNotFound if there is none.
func getEntry(txn *badger.Txn, id []byte, index uint32) (*packEntry, error) {
	item, err := txn.Get(blockKey(id, index))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("read block index: %w", err)
	}
	e := new(packEntry)
	if err := item.Value(e.unmarshal); err != nil {
		return nil, err
	}
	return e, nil
}

// batchWriter commits a long series of changes in several transactions,
// each within Badger's batch limits, never splitting one segment's change
// across two (room is asked per segment).
type batchWriter struct {
	s       *Store
	txn     *badger.Txn
	entries int
	limit   int
	pending []change
	freed   map[uint32]int64 // pack bytes released by the pending deletes
	reason  Reason
}

func (s *Store) newBatchWriter(reason Reason) *batchWriter {
	// Badger limits a transaction's entries and estimated size; deletes
	// and records are small, so half the count limit leaves ample margin.
	limit := int(min(s.db.MaxBatchCount()/2, s.db.MaxBatchSize()/256))
	return &batchWriter{s: s, txn: s.db.NewTransaction(true), limit: max(limit, 600), reason: reason,
		freed: make(map[uint32]int64)}
}

// room commits what is pending if n more entries would not fit.
func (w *batchWriter) room(n int) error {
	if w.entries > 0 && w.entries+n > w.limit {
		return w.flush()
	}
	return nil
}

func (w *batchWriter) set(key, value []byte) error {
	w.entries++
	return w.txn.Set(key, value)
}

func (w *batchWriter) delete(key []byte) error {
	w.entries++
	return w.txn.Delete(key)
}

// record queues a change for accounting once its transaction commits.
func (w *batchWriter) record(c change) { w.pending = append(w.pending, c) }

func (w *batchWriter) flush() error {
	if w.entries == 0 {
		w.pending = w.pending[:0]
		clear(w.freed)
		return nil
	}
	err := w.txn.Commit()
	w.txn = w.s.db.NewTransaction(true)
	w.entries = 0
	if err != nil {
		w.pending = w.pending[:0]
		clear(w.freed)
		return commitError(err)
	}
	w.s.badgerDirty = true
	for id, n := range w.freed {
		w.s.packs.addLive(id, -n)
	}
	clear(w.freed)
	for _, c := range w.pending {
		w.s.applied(c, w.reason)
	}
	w.pending = w.pending[:0]
	return nil
}

func (w *batchWriter) close() error {
	err := w.flush()
	w.txn.Discard()
	return err
}

// deleteBlock queues the removal of one block's index entry.
func (w *batchWriter) deleteBlock(id []byte, index uint32) error {
	e, err := getEntry(w.txn, id, index)
	if err == nil {
		w.freed[e.pack] += e.span()
	} else if !errors.Is(err, ErrNotFound) {
		w.s.log.Warn("store: deleting an unreadable block index entry", "segment", hexID(id), "block", index, "err", err)
	}
	return w.delete(blockKey(id, index))
}

// deleteSegment queues the removal of a segment and everything it holds.
func (w *batchWriter) deleteSegment(id []byte, rec *record) error {
	if err := w.room(4 + rec.held.Len()); err != nil {
		return err
	}
	for _, r := range rec.held.Ranges() {
		for i := r.Index; i < r.Index+r.Count; i++ {
			if err := w.deleteBlock(id, i); err != nil {
				return err
			}
		}
	}
	if rec.hashesKnown {
		if err := w.delete(hashesKey(id)); err != nil {
			return err
		}
	}
	if err := w.delete(accessKey(rec.lastAccess, id)); err != nil {
		return err
	}
	if err := w.delete(recordKey(id)); err != nil {
		return err
	}
	w.record(change{id: id, before: rec})
	return nil
}

// dropEmptyPacks removes packs that hold no live block (writer only).
// LRU eviction empties whole packs most of the time, so the space comes
// back at once, without compaction. The deletes that emptied them are
// made durable first: a power cut must not bring back index entries
// pointing into a removed file.
func (s *Store) dropEmptyPacks() {
	s.packs.seal(1) // a lane's pack with nothing live goes too
	empty := s.packs.takeEmpty()
	if len(empty) == 0 {
		return
	}
	s.syncBadger()
	if s.badgerDirty {
		// The sync failed: keep the packs, look again later.
		for _, id := range empty {
			s.packs.addLive(id, 0)
		}
		return
	}
	// Readers hold the store's lock shared while they read a pack.
	s.mu.Lock()
	for _, id := range empty {
		if err := s.packs.remove(id); err != nil {
			s.log.Warn("store: removing an empty pack", "err", err)
		}
	}
	s.mu.Unlock()
	s.packs.releaseDetached() // unmapping may take a while: not under the lock
}

// repairBlock drops a block whose stored bytes failed their check, if
// they still fail (the block may have been replaced meanwhile).
func (s *Store) repairBlock(ref blockRef) {
	if err := s.readLock(); err != nil {
		return
	}
	e, err := func() (*packEntry, error) {
		defer s.mu.RUnlock()
		txn := s.db.NewTransaction(false)
		defer txn.Discard()
		return getEntry(txn, ref.segmentID, ref.index)
	}()
	if errors.Is(err, ErrNotFound) {
		return
	}
	if err == nil {
		buf := make([]byte, e.length)
		if s.readLock() == nil {
			err = s.readEntry(e, buf)
			s.mu.RUnlock()
		}
		if err == nil {
			return // fine now
		}
	}
	w := s.newBatchWriter(ReasonCorrupt)
	defer w.close()
	rec, rerr := getRecord(w.txn, ref.segmentID)
	if rerr == nil {
		before := *rec
		rec.held.Clear(ref.index)
		rec.verified.Clear(ref.index)
		rec.padded.Clear(ref.index)
		if err := w.set(recordKey(ref.segmentID), rec.marshal()); err != nil {
			s.log.Error("store: repair", "segment", hexID(ref.segmentID), "block", ref.index, "err", err)
			return
		}
		w.record(change{id: ref.segmentID, before: &before, after: rec})
	}
	if err := w.deleteBlock(ref.segmentID, ref.index); err != nil {
		s.log.Error("store: repair", "segment", hexID(ref.segmentID), "block", ref.index, "err", err)
		return
	}
	if err := w.flush(); err != nil {
		s.log.Error("store: repair", "segment", hexID(ref.segmentID), "block", ref.index, "err", err)
		return
	}
	s.stats.add(func(c *counters) { c.corruptBlocks++ })
	s.log.Warn("store: dropped a block that failed its check", "segment", hexID(ref.segmentID), "block", ref.index, "err", err)
}
