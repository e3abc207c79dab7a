package store

import (
	"context"
	"fmt"
	"github.com/dgraph-io/badger/v4"
	"math/bits"

	"github.com/outpost-appliance/outpost/peerdist/pccrr"
	"github.com/outpost-appliance/outpost/peerdist/pchc"
)

// OpenedBlock is a held block read for serving, with what serving it
// needs to know of its segment. From OpenBlock, IV and Ciphertext slice
// the caller's buffer, back to back from its start, as they are stored;
// in ViewBlock's send they may slice a mapping of the pack instead.
type OpenedBlock struct {
	Held       pccrr.BlockSet // the segment's held blocks (NextBlockIndex)
	Tag        string         // the content-tag class it was first offered under
	Crypto     pccrr.CryptoAlgo
	IV         []byte // buf[:16]
	Ciphertext []byte // right after the IV
}

// OpenBlock is ReadBlock for serving: the block and its segment's held set
// and tag in one read transaction, the segment's shape coming from the
// writer's cache of records when it is there (Segment would read and
// decode the whole record). The stored bytes are checked against their
// CRC32C as ReadBlock does. Errors as ReadBlock's; on ErrNotFound for a
// known segment, Held and Tag are still set (a miss counts under its
// tag).
func (s *Store) OpenBlock(ctx context.Context, segmentID []byte, index uint32, buf []byte) (OpenedBlock, error) {
	out, _, err := s.openBlock(ctx, segmentID, index, buf, false)
	return out, err
}

// ViewBlock is OpenBlock without the copy: the block is looked up as
// OpenBlock does and, when found and intact, passed to send, with IV and
// Ciphertext slicing a read-only mapping of the pack file where it can
// be mapped — for send to hand to writev, so that the kernel copies the
// page cache straight into the socket. Those slices are valid only until
// send returns: send must not keep them or write to them. Where the
// block cannot be mapped (a 32-bit platform, the mapping bound, mmap
// failing) it is read into buf as OpenBlock does and send gets that.
//
// The stored bytes' CRC32C is checked before send is called: on the
// block's first view in this process, and on its first view in each
// period of checkTrust after that (checked.go). A block that fails it, or
// whose pages cannot be read, is not sent but dropped and reported as
// OpenBlock reports it (ErrCorrupt, which matches ErrNotFound). send is called at most once, only when
// the block is found and intact, and its error is returned as is. No
// lock of the store is held while send runs: it may block on a socket
// for as long as it likes, and the mapping stays while it does even if
// the pack is removed or the store closed meanwhile. buf must have room
// for the block (ErrShortBuffer) even when it goes unused, so that a
// caller does not depend on the mapping.
//
// The returned OpenedBlock has Held, Tag and Crypto as OpenBlock's
// (Held and Tag also on ErrNotFound for a known segment); IV and
// Ciphertext are nil, being valid only inside send.
func (s *Store) ViewBlock(ctx context.Context, segmentID []byte, index uint32, buf []byte, send func(OpenedBlock) error) (OpenedBlock, error) {
	out, m, err := s.openBlock(ctx, segmentID, index, buf, true)
	if err != nil {
		return out, err
	}
	if m == nil {
		err = send(out)
	} else {
		var faulted bool
		faulted, err = m.sendAndRelease(send, out)
		if faulted {
			err = s.readFailed(segmentID, index, err)
		}
	}
	out.IV, out.Ciphertext = nil, nil
	return out, err
}

// openBlock looks a block up and checks it: OpenBlock, and ViewBlock up
// to send. The bytes are read into buf, or, with view set and the pack
// mappable, sliced from its mapping, which is returned with a reference
// the caller releases once done with them.
func (s *Store) openBlock(ctx context.Context, segmentID []byte, index uint32, buf []byte, view bool) (OpenedBlock, *packMap, error) {
	if err := ctx.Err(); err != nil {
		return OpenedBlock{}, nil, err
	}
	if validID(segmentID) != nil || index >= pccrr.MaxBlocks {
		return OpenedBlock{}, nil, ErrNotFound
	}
	if err := s.readLock(); err != nil {
		return OpenedBlock{}, nil, err
	}
	defer s.mu.RUnlock()
	settled := s.pending.settled.Load() // before the transaction (entry says why)
	meta, gen, ok := s.shapes.lookup(segmentID)
	// A served block's index entry usually comes from the entry cache,
	// which spares a Badger read transaction per request (entries.go).
	entryKey := s.entries.key(segmentID, index)
	e, cached := packEntry{}, false
	if ok && meta.held.Has(index) {
		e, cached = s.entries.get(entryKey, meta.epoch)
		cached = cached && s.packs.get(e.pack) != nil // compacted away: ask the index
	}
	var txn *badger.Txn
	if !ok || !cached {
		txn = s.db.NewTransaction(false)
		defer txn.Discard()
	}
	if !ok {
		rec, err := getRecord(txn, segmentID)
		if err != nil {
			return OpenedBlock{}, nil, err
		}
		meta = metaOf(rec)
		meta.epoch = s.shapes.fill(segmentID, rec, gen)
	}
	out := OpenedBlock{Held: meta.held, Tag: meta.tags.first()}
	var verified pccrr.BlockSet
	s.pending.held(segmentID, &out.Held, &verified) // queued by PutBlock, not yet committed

	var m *packMap
	var payload []byte
	for {
		if !cached {
			var err error
			if e, err = s.entry(txn, settled, segmentID, index); err != nil {
				return out, nil, err
			}
			if meta.held.Has(index) {
				s.entries.put(entryKey, meta.epoch, e)
			}
		}
		if len(buf) < int(e.length) || e.length < ivSize {
			return out, nil, blockErr("read", segmentID, index, fmt.Errorf("%w: %d bytes, need %d", ErrShortBuffer, len(buf), e.length))
		}
		var err error
		m, payload, err = s.readOrView(&e, buf, view)
		switch {
		case err == nil:
		case cached:
			// The cached entry may be an older copy of the block (in a
			// pack compaction has not removed yet): never drop the block
			// for it, ask the index.
			s.entries.forget(entryKey)
			cached = false
			if txn == nil {
				txn = s.db.NewTransaction(false)
				defer txn.Discard()
			}
			continue
		default:
			return out, nil, s.readFailed(segmentID, index, err)
		}
		break
	}
	out.Crypto = pccrr.CryptoAlgo(e.crypto)
	out.IV = payload[:ivSize:ivSize]
	out.Ciphertext = payload[ivSize:]
	s.access.touch(segmentID, s.now())
	return out, m, nil
}

// readOrView gets an entry's checked payload: viewed in its pack's
// mapping (returned with a reference) when view is set and the pack is
// mappable, else read into buf.
func (s *Store) readOrView(e *packEntry, buf []byte, view bool) (*packMap, []byte, error) {
	if view {
		m, viewed, err := s.viewEntry(e)
		if err != nil || m != nil {
			return m, viewed, err
		}
	}
	if err := s.readEntry(e, buf); err != nil {
		return nil, nil, err
	}
	return nil, buf[:e.length:e.length], nil
}

// viewEntry checks a block's payload in its pack's mapping against its
// CRC32C and returns it with a reference to the mapping. A nil mapping
// and no error: the pack is not mapped, read it instead.
func (s *Store) viewEntry(e *packEntry) (*packMap, []byte, error) {
	p := s.packs.get(e.pack)
	if p == nil || e.offset < 0 {
		return nil, nil, nil // the read reports it
	}
	start := e.offset + packHeader
	end := start + int64(e.length)
	m, err := s.packs.mapping(p, end)
	if err != nil {
		s.log.Warn("store: cannot map a pack; serving it with reads", "err", err)
	}
	if m == nil {
		return nil, nil, nil
	}
	payload := m.data[start:end:end]
	fp := s.packs.checked.fingerprint(e)
	if s.packs.checked.has(fp, s.now()) {
		return m, payload, nil // checked lately (checked.go)
	}
	ok, err := m.crcMatches(payload, e.payload)
	if err == nil && !ok {
		err = fmt.Errorf("%s: CRC32C mismatch at %d", packName(e.pack), e.offset)
	}
	if err != nil {
		// Passed once, failed now (its pages came back from the disk
		// damaged): never again served unchecked.
		s.packs.checked.remove(fp)
		m.release()
		return nil, nil, err
	}
	s.packs.checked.add(fp)
	return m, payload, nil
}

// first is the first class of a tag set (pchc.TagOther when empty),
// without allocating.
func (t tagSet) first() string {
	if t == 0 {
		return pchc.TagOther
	}
	names := pchc.TagNames()
	return names[min(bits.TrailingZeros8(uint8(t)), len(names)-1)]
}
