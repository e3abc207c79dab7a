package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/outpost-appliance/outpost/peerdist/pccrc"
	"github.com/outpost-appliance/outpost/peerdist/pccrr"
)

// SegmentOffer is what a BATCHED_OFFER says of a segment: its ID, size and
// content version (HashAlgorithm 0x01 = V1, 0x04 = V2), but no hashes.
type SegmentOffer struct {
	SegmentID  []byte
	Version    pccrc.Version
	Size       uint32
	ContentTag []byte
}

// SegmentInfo is what the store knows of a segment.
type SegmentInfo struct {
	SegmentID   []byte
	Version     pccrc.Version
	HashAlgo    pccrc.HashAlgo
	Size        uint32
	BlockCount  int            // blocks in the segment (V2: 1, index 0)
	Held        pccrr.BlockSet // blocks held (and queued by PutBlock, readable already)
	Verified    pccrr.BlockSet // held blocks checked against their hash; the rest are replayed
	HashesKnown bool           // HoD, Kp (and block hashes) known: INITIAL_OFFER gets OK
	FirstSeen   time.Time      // when the segment entered the store (SEGLIST ages)
	LastAccess  time.Time
	Hits        uint64   // blocks served
	Tags        []string // content-tag classes it was offered under (pchc.TagName)
	Bytes       int64    // its share of the store
}

// HeldBlocks is the number of blocks held.
func (i *SegmentInfo) HeldBlocks() int { return i.Held.Len() }

// Complete reports whether every block of the segment is held.
func (i *SegmentInfo) Complete() bool { return i.Held.Len() == i.BlockCount }

func (s *Store) info(id []byte, rec *record) SegmentInfo {
	last := rec.lastAccess
	hits := rec.hits
	if note, ok := s.access.peek(id); ok {
		last = max(last, note.last)
		hits += note.hits
	}
	return SegmentInfo{
		SegmentID:   append([]byte(nil), id...),
		Version:     rec.version,
		HashAlgo:    rec.algo,
		Size:        rec.size,
		BlockCount:  rec.blockCount(),
		Held:        rec.held,
		Verified:    rec.verified,
		HashesKnown: rec.hashesKnown,
		FirstSeen:   timeOf(rec.firstSeen),
		LastAccess:  timeOf(last),
		Hits:        hits,
		Tags:        rec.tags.names(),
		Bytes:       rec.bytes(),
	}
}

func (s *Store) now() int64 { return s.opt.Now().UnixNano() }

func checkSize(version pccrc.Version, size uint32) error {
	switch {
	case version == pccrc.V1 && size >= 1 && size <= pccrc.SegmentSizeV1:
	case version == pccrc.V2 && size >= 1 && size <= pccrc.MaxSegmentSizeV2:
	case version != pccrc.V1 && version != pccrc.V2:
		return fmt.Errorf("content version %d", version)
	default:
		return fmt.Errorf("V%d segment of %d bytes", version, size)
	}
	return nil
}

// offerAlgo is the hash algorithm an offer implies: V2 has one; for V1 the
// ID's length tells (Windows offers only SHA-256 content).
func offerAlgo(version pccrc.Version, id []byte) pccrc.HashAlgo {
	switch {
	case version == pccrc.V2:
		return pccrc.TruncatedSHA512
	case len(id) == 48:
		return pccrc.SHA384
	case len(id) == 64:
		return pccrc.SHA512
	}
	return pccrc.SHA256
}

// AddOffer records offered segments (a BATCHED_OFFER's descriptors, in
// one transaction) so that their blocks can be stored — for replay,
// unless their hashes become known. Offering a segment the store knows
// adds the content tag. An offer of another size or version than the
// store knows, or out of range, is refused with ErrConflict and changes
// nothing; the others are recorded all the same (the error joins one
// error per refused offer, each naming its segment).
func (s *Store) AddOffer(ctx context.Context, offers ...SegmentOffer) error {
	var errs []error
	var valid []SegmentOffer
	for _, offer := range offers {
		id := offer.SegmentID
		switch err := validID(id); {
		case err != nil:
			errs = append(errs, fmt.Errorf("store: offer %s: %w", hexID(id), err))
		case checkSize(offer.Version, offer.Size) != nil:
			errs = append(errs, fmt.Errorf("store: offer %s: %w: %v", hexID(id), ErrConflict, checkSize(offer.Version, offer.Size)))
		case offer.Version == pccrc.V2 && len(id) != 32:
			errs = append(errs, fmt.Errorf("store: offer %s: V2 segment ID of %d bytes", hexID(id), len(id)))
		default:
			valid = append(valid, offer)
		}
	}
	if len(valid) == 0 {
		return errors.Join(errs...)
	}
	err := s.do(ctx, func() error {
		if err := s.checkReserve(uint64(len(valid)) * recordSize); err != nil {
			return err
		}
		w := s.newBatchWriter("")
		defer w.close()
		now := s.now()
		var conflicts []error
		for _, offer := range valid {
			id, tag := offer.SegmentID, tagOf(offer.ContentTag)
			if err := w.room(2); err != nil {
				return err
			}
			rec, err := getRecord(w.txn, id)
			switch {
			case errors.Is(err, ErrNotFound):
				rec = &record{version: offer.Version, algo: offerAlgo(offer.Version, id), size: offer.Size,
					firstSeen: now, lastAccess: now, tags: tag}
				if err := w.set(accessKey(now, id), nil); err != nil {
					return err
				}
				if err := w.set(recordKey(id), rec.marshal()); err != nil {
					return err
				}
				w.record(change{id: id, after: rec})
			case err != nil:
				return err
			case rec.version != offer.Version || rec.size != offer.Size:
				conflicts = append(conflicts, fmt.Errorf("store: offer %s: %w: offered as V%d of %d bytes, known as V%d of %d bytes",
					hexID(id), ErrConflict, offer.Version, offer.Size, rec.version, rec.size))
			case rec.tags&tag == 0:
				before := *rec
				rec.tags |= tag
				if err := w.set(recordKey(id), rec.marshal()); err != nil {
					return err
				}
				w.record(change{id: id, before: &before, after: rec})
			}
		}
		if err := w.flush(); err != nil {
			return err
		}
		return errors.Join(conflicts...)
	})
	if err != nil {
		if !errors.Is(err, ErrConflict) {
			err = fmt.Errorf("store: offer: %w", err)
		}
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// AddSegmentInfo records a segment's hashes from content information (a
// SEGMENT_INFO, or content information fetched by the appliance) and
// returns its ID (HoHoDk, computed here from HoD and Kp). From then on
// its blocks are verified before they are accepted. V1 needs the complete
// block-hash list, and it must hash to HoD; otherwise ErrBadSegmentInfo
// and nothing changes.
//
// Blocks already held for replay are decrypted and checked now: those
// that match are kept (re-encrypted as PutBlock does), the rest dropped.
// If the store knew the segment under another size or version (an
// offer's claim), the content information wins and replayed blocks go.
func (s *Store) AddSegmentInfo(ctx context.Context, version pccrc.Version, algo pccrc.HashAlgo, seg pccrc.Segment, contentTag []byte) ([]byte, error) {
	if err := checkSegmentInfo(version, algo, &seg); err != nil {
		return nil, fmt.Errorf("store: segment info: %w: %v", ErrBadSegmentInfo, err)
	}
	id := algo.SegmentID(seg.Secret, seg.HashOfData)
	h := hashes{algo: algo, hashOfData: seg.HashOfData, secret: seg.Secret, blockHashes: seg.BlockHashes}
	fresh := record{version: version, algo: algo, size: seg.Size, hashesKnown: true, tags: tagOf(contentTag)}
	// Blocks still queued for this segment land first, so that replayed
	// ones are verified below rather than discarded.
	if err := s.Sync(ctx); err != nil && !errors.Is(err, ErrCommit) {
		return nil, fmt.Errorf("store: segment info %s: %w", hexID(id), err)
	}
	for range 5 {
		done, err := s.upgradeReplayed(ctx, id, &fresh, &h)
		if err != nil {
			return nil, fmt.Errorf("store: segment info %s: %w", hexID(id), err)
		}
		if done {
			return id, nil
		}
	}
	return nil, fmt.Errorf("store: segment info %s: blocks kept arriving while they were being verified; try again", hexID(id))
}

func checkSegmentInfo(version pccrc.Version, algo pccrc.HashAlgo, seg *pccrc.Segment) error {
	if err := checkSize(version, seg.Size); err != nil {
		return err
	}
	if (version == pccrc.V2) != (algo == pccrc.TruncatedSHA512) || algo.Size() == 0 {
		return fmt.Errorf("hash algorithm %v for V%d content", algo, version)
	}
	if len(seg.HashOfData) != algo.Size() || len(seg.Secret) != algo.Size() {
		return fmt.Errorf("HoD of %d and Kp of %d bytes for %v", len(seg.HashOfData), len(seg.Secret), algo)
	}
	if version == pccrc.V2 {
		if len(seg.BlockHashes) != 0 {
			return errors.New("block hashes for V2 content")
		}
		return nil
	}
	for i, bh := range seg.BlockHashes {
		if len(bh) != algo.Size() {
			return fmt.Errorf("block hash %d of %d bytes", i, len(bh))
		}
	}
	return seg.CheckHashOfData(algo)
}

// upgradeReplayed brings a segment to "hashes known". Replayed blocks are
// verified one at a time outside the writer (a full V1 segment is 32 MiB
// of cryptography) and each result is applied only if that block is still
// as it was read. It reports done once the hashes are recorded.
func (s *Store) upgradeReplayed(ctx context.Context, id []byte, fresh *record, h *hashes) (bool, error) {
	rec, err := s.snapshotRecord(id)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return false, err
	}
	if rec != nil && !rec.hashesKnown && (rec.version != fresh.version || rec.size != fresh.size) {
		// The offer's claim was wrong: the content information wins.
		err := s.do(ctx, func() error { return s.dropReplayed(id, rec, fresh) })
		return false, err
	}
	if rec != nil && !rec.hashesKnown {
		unverified := rec.held
		for i := range unverified {
			unverified[i] &^= rec.verified[i]
		}
		for _, r := range unverified.Ranges() {
			for index := r.Index; index < r.Index+r.Count; index++ {
				if err := s.verifyReplayed(ctx, id, index, fresh, h); err != nil {
					return false, err
				}
			}
		}
	}
	var done bool
	err = s.do(ctx, func() error {
		if err := s.checkReserve(uint64(len(h.marshal()))); err != nil {
			return err
		}
		w := s.newBatchWriter("")
		defer w.close()
		cur, err := getRecord(w.txn, id)
		now := s.now()
		switch {
		case errors.Is(err, ErrNotFound):
			rec := *fresh
			rec.firstSeen, rec.lastAccess = now, now
			if err := w.set(hashesKey(id), h.marshal()); err != nil {
				return err
			}
			if err := w.set(accessKey(now, id), nil); err != nil {
				return err
			}
			if err := w.set(recordKey(id), rec.marshal()); err != nil {
				return err
			}
			w.record(change{id: id, after: &rec})
		case err != nil:
			return err
		case cur.hashesKnown:
			if cur.tags&fresh.tags != 0 {
				done = true
				return nil
			}
			before := *cur
			cur.tags |= fresh.tags
			if err := w.set(recordKey(id), cur.marshal()); err != nil {
				return err
			}
			w.record(change{id: id, before: &before, after: cur})
		default:
			if cur.version != fresh.version || cur.size != fresh.size || cur.held != cur.verified {
				return nil // changed meanwhile: go round again
			}
			before := *cur
			cur.algo, cur.hashesKnown = fresh.algo, true
			cur.tags |= fresh.tags
			if err := w.set(hashesKey(id), h.marshal()); err != nil {
				return err
			}
			if err := w.set(recordKey(id), cur.marshal()); err != nil {
				return err
			}
			w.record(change{id: id, before: &before, after: cur})
		}
		if err := w.flush(); err != nil {
			return err
		}
		done = true
		return nil
	})
	return done, err
}

// verifyReplayed checks one replayed block against the segment's hashes
// and, in the writer, replaces it with its verified form or drops it.
func (s *Store) verifyReplayed(ctx context.Context, id []byte, index uint32, fresh *record, h *hashes) error {
	// Read the replayed block as stored.
	var stored *packEntry
	var payload []byte
	if err := s.readLock(); err != nil {
		return err
	}
	err := s.db.View(func(txn *badger.Txn) error {
		e, err := getEntry(txn, id, index)
		if err != nil {
			return err
		}
		stored, payload = e, make([]byte, e.length)
		return s.readEntry(e, payload)
	})
	s.mu.RUnlock()
	if stored == nil {
		return nil // gone, or its index entry unreadable (the open-time check drops it)
	}
	p := &putPlan{segmentID: id, index: index, plainLen: fresh.plainLen(index), secret: h.secret, algo: h.algo}
	if fresh.version == pccrc.V2 {
		p.want = h.hashOfData
	} else {
		p.want = h.blockHashes[index]
	}
	keep := false
	if err == nil {
		plain, derr := pccrr.DecryptBlock(p.secret, pccrr.CryptoAlgo(stored.crypto), payload[:ivSize], payload[ivSize:], p.plainLen,
			func(plain []byte) bool { return pccrc.VerifyBlock(p.algo, p.want, plain) })
		if derr == nil {
			if err := p.encrypt(plain); err != nil {
				return err
			}
			keep = true
		}
	}
	return s.do(ctx, func() error {
		txn := s.db.NewTransaction(true)
		defer txn.Discard()
		rec, err := getRecord(txn, id)
		if err != nil || rec.hashesKnown || !rec.held.Has(index) || rec.verified.Has(index) {
			return nil // changed meanwhile; the caller goes round again
		}
		cur, err := getEntry(txn, id, index)
		if err != nil || *cur != *stored {
			return nil
		}
		before := *rec
		var newPack uint32
		var newSpan int64
		if keep {
			packID, offsets, err := s.packs.append(p.parts()) // written and synced
			if err != nil {
				return err
			}
			written := p.span()
			defer func() { s.packs.settle(packID, written, 0) }() // the live part moves below
			e := p.entry(packID, offsets[0])
			if err := txn.SetEntry(badger.NewEntry(blockKey(id, index), e.marshal()).WithMeta(p.userMeta)); err != nil {
				return err
			}
			newPack, newSpan = packID, e.span()
			rec.verified.Set(index)
			rec.padded.Clear(index)
			if p.userMeta&metaPadded != 0 {
				rec.padded.Set(index)
			}
		} else {
			if err := txn.Delete(blockKey(id, index)); err != nil {
				return err
			}
			rec.held.Clear(index)
			rec.padded.Clear(index)
			s.log.Warn("store: a replayed block does not match the segment's hashes; dropped",
				"segment", hexID(id), "block", index)
		}
		if err := txn.Set(recordKey(id), rec.marshal()); err != nil {
			return err
		}
		if err := txn.Commit(); err != nil {
			return commitError(err)
		}
		if newSpan > 0 {
			s.packs.addLive(newPack, newSpan)
		}
		s.packs.addLive(stored.pack, -stored.span())
		s.badgerDirty = true
		s.applied(change{id: id, before: &before, after: rec}, ReasonReplaced)
		return nil
	})
}

// dropReplayed (writer) replaces a record whose size or version the
// content information contradicts: its replayed blocks go.
func (s *Store) dropReplayed(id []byte, seen *record, fresh *record) error {
	w := s.newBatchWriter(ReasonReplaced)
	defer w.close()
	cur, err := getRecord(w.txn, id)
	if err != nil || cur.hashesKnown || cur.held != seen.held {
		return nil // changed meanwhile
	}
	if err := w.deleteSegment(id, cur); err != nil {
		return err
	}
	s.log.Warn("store: content information contradicts an offer; replayed blocks dropped",
		"segment", hexID(id), "offered_size", cur.size, "size", fresh.size)
	return w.flush()
}

// snapshotRecord reads a record outside the writer.
func (s *Store) snapshotRecord(id []byte) (*record, error) {
	if err := s.readLock(); err != nil {
		return nil, err
	}
	defer s.mu.RUnlock()
	txn := s.db.NewTransaction(false)
	defer txn.Discard()
	return getRecord(txn, id)
}

// Segment returns what the store knows of a segment, or ErrNotFound.
func (s *Store) Segment(ctx context.Context, segmentID []byte) (SegmentInfo, error) {
	if err := ctx.Err(); err != nil {
		return SegmentInfo{}, err
	}
	if validID(segmentID) != nil {
		return SegmentInfo{}, ErrNotFound
	}
	rec, err := s.snapshotRecord(segmentID)
	if err != nil {
		return SegmentInfo{}, err
	}
	info := s.info(segmentID, rec)
	s.pending.held(segmentID, &info.Held, &info.Verified) // queued by PutBlock, not yet committed
	return info, nil
}

// HasSegment reports whether at least one block of the segment is held
// (what MSG_SEGLIST and discovery answer for).
func (s *Store) HasSegment(ctx context.Context, segmentID []byte) (bool, error) {
	info, err := s.Segment(ctx, segmentID)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	return err == nil && info.Held.Len() > 0, err
}

// HashesKnown reports whether the segment's hashes are known, so that an
// INITIAL_OFFER is answered OK rather than INTERESTED.
func (s *Store) HashesKnown(ctx context.Context, segmentID []byte) (bool, error) {
	info, err := s.Segment(ctx, segmentID)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	return err == nil && info.HashesKnown, err
}

// ListSegments returns up to limit segments in ID order, starting after
// the ID after (nil: from the start), and the cursor for the next page
// (nil at the end).
func (s *Store) ListSegments(ctx context.Context, after []byte, limit int) ([]SegmentInfo, []byte, error) {
	if limit <= 0 {
		limit = 100
	}
	if err := s.readLock(); err != nil {
		return nil, nil, err
	}
	defer s.mu.RUnlock()
	txn := s.db.NewTransaction(false)
	defer txn.Discard()
	it := txn.NewIterator(badger.IteratorOptions{PrefetchValues: false, Prefix: []byte{prefixRecord}})
	defer it.Close()
	seek := []byte{prefixRecord}
	if after != nil {
		seek = recordKey(after)
	}
	var out []SegmentInfo
	for it.Seek(seek); it.Valid(); it.Next() {
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		item := it.Item()
		id, _, ok := parseSegmentKey(item.Key())
		if !ok || (after != nil && bytes.Equal(item.Key(), seek)) {
			continue
		}
		if len(out) == limit {
			return out, out[len(out)-1].SegmentID, nil
		}
		var rec record
		if err := item.Value(rec.unmarshal); err != nil {
			return nil, nil, fmt.Errorf("store: list: segment %s: %w", hexID(id), err)
		}
		out = append(out, s.info(id, &rec))
	}
	return out, nil, nil
}

// DeleteSegment removes a segment and its blocks (an operator's purge;
// Windows has no equivalent). ErrNotFound if the store does not know it.
func (s *Store) DeleteSegment(ctx context.Context, segmentID []byte) error {
	if validID(segmentID) != nil {
		return fmt.Errorf("store: delete %s: %w", hexID(segmentID), ErrNotFound)
	}
	err := s.do(ctx, func() error {
		w := s.newBatchWriter(ReasonOperator)
		defer w.close()
		rec, err := getRecord(w.txn, segmentID)
		if err != nil {
			return err
		}
		if err := w.deleteSegment(segmentID, rec); err != nil {
			return err
		}
		if err := w.flush(); err != nil {
			return err
		}
		s.access.forget(segmentID)
		s.stats.add(func(c *counters) { c.deleted++; c.evictedSinceGC += rec.bytes() })
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: delete %s: %w", hexID(segmentID), err)
	}
	s.maybeKickGC()
	return nil
}

// Flush empties the store (an operator's "clear cache"). Subscribers get
// StoreFlushed.
func (s *Store) Flush(ctx context.Context) error {
	s.gcMu.Lock()
	defer s.gcMu.Unlock()
	err := s.do(ctx, func() error {
		// Badger's DropAll must not race reads: take the store exclusively.
		s.mu.Lock()
		defer s.mu.Unlock()
		if err := s.db.DropAll(); err != nil {
			return err
		}
		for _, p := range s.packs.stats() {
			if err := s.packs.remove(p.id); err != nil {
				return err
			}
		}
		s.access.take()
		s.pending.clear()
		s.shapes.clear()
		s.entries.clear()
		s.stats.reset()
		return nil
	})
	s.packs.releaseDetached() // the removed packs' mappings, now the lock is free
	if err != nil {
		return fmt.Errorf("store: flush: %w", err)
	}
	s.feed.publish(Event{Kind: StoreFlushed, Reason: ReasonFlush})
	s.log.Info("store flushed", "dir", s.opt.Dir)
	return nil
}
