package store

import (
	"context"
	"fmt"
	"math/bits"

	"github.com/outpost-appliance/outpost/peerdist/pccrr"
	"github.com/outpost-appliance/outpost/peerdist/pchc"
)

// OpenedBlock is a held block read for serving, with what serving it
// needs to know of its segment. IV and Ciphertext slice the caller's
// buffer, back to back from its start, as they are stored.
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
	if err := ctx.Err(); err != nil {
		return OpenedBlock{}, err
	}
	if validID(segmentID) != nil || index >= pccrr.MaxBlocks {
		return OpenedBlock{}, ErrNotFound
	}
	if err := s.readLock(); err != nil {
		return OpenedBlock{}, err
	}
	defer s.mu.RUnlock()
	txn := s.db.NewTransaction(false)
	defer txn.Discard()

	meta, gen, ok := s.shapes.lookup(segmentID)
	if !ok {
		rec, err := getRecord(txn, segmentID)
		if err != nil {
			return OpenedBlock{}, err
		}
		s.shapes.fill(segmentID, rec, gen)
		meta = metaOf(rec)
	}
	out := OpenedBlock{Held: meta.held, Tag: meta.tags.first()}
	var verified pccrr.BlockSet
	s.pending.held(segmentID, &out.Held, &verified) // queued by PutBlock, not yet committed

	e, err := s.entry(txn, segmentID, index)
	if err != nil {
		return out, err
	}
	if len(buf) < int(e.length) || e.length < ivSize {
		return out, blockErr("read", segmentID, index, fmt.Errorf("%w: %d bytes, need %d", ErrShortBuffer, len(buf), e.length))
	}
	if err := s.readEntry(&e, buf); err != nil {
		return out, s.readFailed(segmentID, index, err)
	}
	out.Crypto = pccrr.CryptoAlgo(e.crypto)
	out.IV = buf[:ivSize:ivSize]
	out.Ciphertext = buf[ivSize:e.length:e.length]
	s.access.touch(segmentID, s.now())
	return out, nil
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
