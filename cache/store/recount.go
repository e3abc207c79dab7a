package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"

	"github.com/outpost-appliance/outpost/peerdist/pccrr"
)

// recount runs at Open, before anything else writes. It walks every
// segment record beside the block keys (both sorted by ID), recomputes the
// accounting from what is actually there, and repairs disagreements:
//
//   - a block key is the truth about a block (it was written in one
//     transaction with its record, and carries its verified/padded bits
//     in UserMeta): the record's held set is rebuilt from the keys;
//   - a block without a record, beyond its segment's blocks, or pointing
//     outside its pack, is deleted;
//   - each pack's live bytes are summed from the block keys (packs with
//     none are removed by the writer when it starts);
//   - a record claiming hashes that are missing forgets them;
//   - LRU index entries are made to match the records one to one.
//
// Transactions make all of these impossible in normal operation; the walk
// is what guarantees the accounting matches the contents after anything
// (a bug, a damaged LSM table), at the cost of reading every key: about
// a second per million blocks.
func (s *Store) recount(ctx context.Context) error {
	txn := s.db.NewTransaction(false)
	defer txn.Discard()
	w := s.newBatchWriter("")
	defer w.close()
	var repairs int

	recIt := txn.NewIterator(badger.IteratorOptions{PrefetchValues: false, Prefix: []byte{prefixRecord}})
	defer recIt.Close()
	blkIt := txn.NewIterator(badger.IteratorOptions{PrefetchValues: true, PrefetchSize: 256, Prefix: []byte{prefixBlock}})
	defer blkIt.Close()
	blkIt.Rewind()

	// blockOwner is the <len><id> part of a block key.
	blockOwner := func(key []byte) []byte {
		if len(key) < 2 || len(key) < 2+int(key[1]) {
			return key[1:]
		}
		return key[1 : 2+int(key[1])]
	}
	deleteBlock := func(key []byte, why string) error {
		repairs++
		s.log.Warn("store: open: deleting a block", "key", fmt.Sprintf("%x", key), "why", why)
		if err := w.room(1); err != nil {
			return err
		}
		return w.delete(append([]byte(nil), key...))
	}

	for recIt.Rewind(); recIt.Valid(); recIt.Next() {
		if err := ctx.Err(); err != nil {
			return err
		}
		key := recIt.Item().KeyCopy(nil)
		id, _, ok := parseSegmentKey(key)
		owner := key[1:]
		var rec record
		err := recIt.Item().Value(rec.unmarshal)
		if !ok || err != nil {
			// An unreadable record: drop it; its blocks become orphans below.
			repairs++
			s.log.Warn("store: open: deleting an unreadable segment record", "key", fmt.Sprintf("%x", key), "err", err)
			if err := w.room(1); err != nil {
				return err
			}
			if err := w.delete(key); err != nil {
				return err
			}
			continue
		}
		for ; blkIt.Valid() && bytes.Compare(blockOwner(blkIt.Item().Key()), owner) < 0; blkIt.Next() {
			if err := deleteBlock(blkIt.Item().Key(), "no segment record"); err != nil {
				return err
			}
		}
		fixed := rec
		fixed.held, fixed.verified, fixed.padded = pccrr.BlockSet{}, pccrr.BlockSet{}, pccrr.BlockSet{}
		for ; blkIt.Valid() && bytes.Equal(blockOwner(blkIt.Item().Key()), owner); blkIt.Next() {
			item := blkIt.Item()
			_, index, ok := parseSegmentKey(item.Key())
			if !ok || int(index) >= rec.blockCount() {
				if err := deleteBlock(item.Key(), "not a block of its segment"); err != nil {
					return err
				}
				continue
			}
			var e packEntry
			if err := item.Value(e.unmarshal); err != nil {
				if err := deleteBlock(item.Key(), err.Error()); err != nil {
					return err
				}
				continue
			}
			if p := s.packs.get(e.pack); p == nil || e.offset+e.span() > p.size {
				if err := deleteBlock(item.Key(), "points outside its pack"); err != nil {
					return err
				}
				continue
			}
			s.packs.addLive(e.pack, e.span())
			fixed.held.Set(index)
			if item.UserMeta()&metaVerified != 0 {
				fixed.verified.Set(index)
			}
			if item.UserMeta()&metaPadded != 0 {
				fixed.padded.Set(index)
			}
		}
		if fixed.hashesKnown {
			if _, err := txn.Get(hashesKey(id)); errors.Is(err, badger.ErrKeyNotFound) {
				fixed.hashesKnown = false
			} else if err != nil {
				return fmt.Errorf("segment %s: hashes: %w", hexID(id), err)
			}
		}
		if _, err := txn.Get(accessKey(rec.lastAccess, id)); errors.Is(err, badger.ErrKeyNotFound) {
			repairs++
			if err := w.room(1); err != nil {
				return err
			}
			if err := w.set(accessKey(rec.lastAccess, id), nil); err != nil {
				return err
			}
		} else if err != nil {
			return fmt.Errorf("segment %s: access index: %w", hexID(id), err)
		}
		if fixed != rec {
			repairs++
			s.log.Warn("store: open: segment record disagreed with its blocks; repaired", "segment", hexID(id),
				"held", rec.held.Len(), "found", fixed.held.Len())
			if err := w.room(1); err != nil {
				return err
			}
			if err := w.set(key, fixed.marshal()); err != nil {
				return err
			}
		}
		s.stats.account(nil, &fixed)
	}
	for ; blkIt.Valid(); blkIt.Next() {
		if err := deleteBlock(blkIt.Item().Key(), "no segment record"); err != nil {
			return err
		}
	}

	// Index and hashes entries without a matching record.
	for _, prefix := range []byte{prefixAccess, prefixHashes} {
		it := txn.NewIterator(badger.IteratorOptions{PrefetchValues: false, Prefix: []byte{prefix}})
		for it.Rewind(); it.Valid(); it.Next() {
			if err := ctx.Err(); err != nil {
				it.Close()
				return err
			}
			key := it.Item().Key()
			var id []byte
			var last int64
			var ok bool
			if prefix == prefixAccess {
				last, id, ok = parseAccessKey(key)
			} else {
				id, _, ok = parseSegmentKey(key)
			}
			keep := false
			if ok {
				if rec, err := getRecord(txn, id); err == nil {
					keep = (prefix == prefixAccess && rec.lastAccess == last) || (prefix == prefixHashes && rec.hashesKnown)
				}
			}
			if !keep {
				repairs++
				if err := w.room(1); err != nil {
					it.Close()
					return err
				}
				if err := w.delete(it.Item().KeyCopy(nil)); err != nil {
					it.Close()
					return err
				}
			}
		}
		it.Close()
	}
	if err := w.close(); err != nil {
		return fmt.Errorf("recount: writing repairs: %w", err)
	}
	if repairs > 0 {
		s.log.Warn("store: open: repaired the store", "dir", s.opt.Dir, "repairs", repairs)
	}
	return nil
}
