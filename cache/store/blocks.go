package store

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"hash/crc32"
	"syscall"

	"github.com/dgraph-io/badger/v4"

	"github.com/outpost-appliance/outpost/peerdist/pccrc"
	"github.com/outpost-appliance/outpost/peerdist/pccrr"
)

// A stored block is the MSG_BLK payload (IV and ciphertext) in a pack
// file, with its CryptoAlgoId; packs.go says why and how.

// PutResult says what PutBlock did.
type PutResult struct {
	// Stored is false when the block was already held (nothing queued).
	Stored bool
	// Verified: the block was checked against its hash (content
	// information known); otherwise it is kept for replay, unverifiable.
	Verified bool
}

// PutBlock stores block index of a segment as received in a MSG_BLK.
//
// If the segment's hashes are known (AddSegmentInfo), the block is
// decrypted with Kp (the header's key length, then the full 32-byte key,
// protocols.md §3.6), checked against its block hash (V1) or HoD (V2),
// and stored re-encrypted once with AES-256-CBC, key Kp[0:32], a fresh
// random IV: readable under both key readings. A mismatch is a
// *BlockError wrapping ErrVerify that names segment and block.
//
// Otherwise (a BATCHED_OFFER told only the ID and size) the ciphertext,
// IV and algorithm are kept exactly as received, for replay, after shape
// checks: AES, a 16-byte IV, a ciphertext that is a multiple of 16 bytes
// and between the plaintext size and 16 bytes more.
//
// Checks done, the block is written to a pack and queued for the next
// group commit, and PutBlock returns: the block is readable at once
// (ReadBlock, Segment), but PutBlock does not wait for the disk, so a
// puller's next request overlaps the sync, and one sync serves many
// blocks. The block and its segment's record change in one transaction,
// durable a few milliseconds later; Sync waits for that. A full disk is
// reported here (ErrDiskFull); a commit that fails later is logged,
// reported by Sync, and the block is no longer readable.
func (s *Store) PutBlock(ctx context.Context, segmentID []byte, index uint32, blk Block) (PutResult, error) {
	return s.put(ctx, segmentID, index, func(p *putPlan) error {
		if !p.rec.hashesKnown {
			return p.replay(blk)
		}
		plain, err := pccrr.DecryptBlock(p.secret, blk.Crypto, blk.IV, blk.Ciphertext, p.plainLen,
			func(plain []byte) bool { return pccrc.VerifyBlock(p.algo, p.want, plain) })
		switch {
		case errors.Is(err, pccrr.ErrVerify):
			return fmt.Errorf("%w (%v, %v as sent and AES-256)", ErrVerify, p.algo, blk.Crypto)
		case err != nil:
			return fmt.Errorf("%w: %v", ErrMalformedBlock, err)
		}
		return p.encrypt(plain)
	})
}

// PutPlainBlock stores a block's plaintext (from an origin, a local file
// or a preload): checked against its hash, then encrypted once as
// PutBlock does. The segment's hashes must be known (ErrNoHashes).
func (s *Store) PutPlainBlock(ctx context.Context, segmentID []byte, index uint32, plain []byte) (PutResult, error) {
	return s.put(ctx, segmentID, index, func(p *putPlan) error {
		if !p.rec.hashesKnown {
			return ErrNoHashes
		}
		if len(plain) != p.plainLen {
			return fmt.Errorf("%w: %d bytes of plaintext, the block has %d", ErrMalformedBlock, len(plain), p.plainLen)
		}
		if !pccrc.VerifyBlock(p.algo, p.want, plain) {
			return fmt.Errorf("%w (%v)", ErrVerify, p.algo)
		}
		return p.encrypt(plain)
	})
}

// putPlan is what a put knows while it prepares the value, outside the
// writer.
type putPlan struct {
	rec       *record
	segmentID []byte
	index     uint32
	plainLen  int
	secret    []byte // Kp, when hashes are known
	want      []byte // the hash the plaintext must have
	algo      pccrc.HashAlgo
	userMeta  byte
	// the pack entry, once prepared
	header [packHeader]byte
	crypto pccrr.CryptoAlgo
	iv, ct []byte
	crc    uint32
}

func (s *Store) put(ctx context.Context, segmentID []byte, index uint32, prepare func(*putPlan) error) (PutResult, error) {
	if err := validID(segmentID); err != nil {
		return PutResult{}, blockErr("put", segmentID, index, fmt.Errorf("%w: %v", ErrMalformedBlock, err))
	}
	if err := ctx.Err(); err != nil {
		return PutResult{}, err
	}
	p, res, err := s.planPut(segmentID, index)
	if err != nil || p == nil {
		return res, err
	}
	if err := prepare(p); err != nil {
		return PutResult{}, blockErr("put", segmentID, index, err)
	}
	parts := p.parts()
	n := p.span()
	if err := s.checkReserve(uint64(n)); err != nil {
		s.stats.add(func(c *counters) { c.diskFullRejects++ })
		return PutResult{}, blockErr("put", segmentID, index, err)
	}
	// Write the block into space reserved in the current pack, straight
	// from the caller's buffers; the writer syncs and indexes it with the
	// rest of its group commit.
	pk, off, err := s.packs.reserve(n, segmentID[len(segmentID)-1])
	if err == nil {
		if err = pk.writeAt(parts, off); err != nil {
			s.packs.settle(pk.id, n, 0)
		}
	}
	if err != nil {
		if errors.Is(err, syscall.ENOSPC) {
			s.stats.add(func(c *counters) { c.diskFullRejects++ })
			s.kickMaintenance()
			err = fmt.Errorf("%w: %v", ErrDiskFull, err)
		}
		return PutResult{}, blockErr("put", segmentID, index, err)
	}
	req := &putRequest{
		segmentID: append([]byte(nil), segmentID...), index: index, userMeta: p.userMeta,
		entry:   p.entry(pk.id, off),
		version: p.rec.version, size: p.rec.size, hashesKnown: p.rec.hashesKnown,
	}
	s.pending.add(req.segmentID, index, req.entry)
	if err := s.queuePut(ctx, req); err != nil {
		s.pending.remove(req.segmentID, index, req.entry)
		s.packs.settle(pk.id, n, 0)
		return PutResult{}, blockErr("put", segmentID, index, err)
	}
	return PutResult{Stored: true, Verified: p.userMeta&metaVerified != 0}, nil
}

// planPut reads what a put needs. A nil plan with a nil error means the
// block is already held.
func (s *Store) planPut(segmentID []byte, index uint32) (*putPlan, PutResult, error) {
	if err := s.readLock(); err != nil {
		return nil, PutResult{}, err
	}
	defer s.mu.RUnlock()
	var txn *badger.Txn
	defer func() {
		if txn != nil {
			txn.Discard()
		}
	}()
	meta, gen, ok := s.shapes.lookup(segmentID)
	rec := meta.record()
	if !ok {
		txn = s.db.NewTransaction(false)
		var err error
		rec, err = getRecord(txn, segmentID)
		if errors.Is(err, ErrNotFound) {
			err = ErrUnknownSegment
		}
		if err != nil {
			return nil, PutResult{}, blockErr("put", segmentID, index, err)
		}
		s.shapes.fill(segmentID, rec, gen)
	}
	if int(index) >= rec.blockCount() {
		return nil, PutResult{}, blockErr("put", segmentID, index,
			fmt.Errorf("%w: index beyond the segment's %d blocks", ErrMalformedBlock, rec.blockCount()))
	}
	if rec.held.Has(index) {
		return nil, PutResult{Stored: false, Verified: rec.verified.Has(index)}, nil
	}
	if e, ok := s.pending.get(segmentID, index); ok {
		return nil, PutResult{Stored: false, Verified: e.flags&metaVerified != 0}, nil
	}
	p := &putPlan{rec: rec, segmentID: segmentID, index: index, plainLen: rec.plainLen(index)}
	if rec.hashesKnown {
		if txn == nil {
			txn = s.db.NewTransaction(false)
		}
		item, err := txn.Get(hashesKey(segmentID))
		if err != nil {
			return nil, PutResult{}, blockErr("put", segmentID, index, fmt.Errorf("read hashes: %w", err))
		}
		err = item.Value(func(v []byte) error {
			var err error
			p.secret, p.want, p.algo, err = keyAndHash(v, rec.version, index)
			return err
		})
		if err != nil {
			return nil, PutResult{}, blockErr("put", segmentID, index, fmt.Errorf("read hashes: %w", err))
		}
	}
	return p, PutResult{}, nil
}

// replay prepares a block whose hashes are unknown: shape checks only.
func (p *putPlan) replay(blk Block) error {
	switch {
	case blk.Crypto == pccrr.CryptoNone || !blk.Crypto.Valid():
		return fmt.Errorf("%w: %v (replay needs an AES block)", ErrMalformedBlock, blk.Crypto)
	case len(blk.IV) != ivSize:
		return fmt.Errorf("%w: IV of %d bytes", ErrMalformedBlock, len(blk.IV))
	case len(blk.Ciphertext)%16 != 0:
		return fmt.Errorf("%w: ciphertext of %d bytes is not a multiple of 16", ErrMalformedBlock, len(blk.Ciphertext))
	case len(blk.Ciphertext) < p.plainLen || len(blk.Ciphertext) > p.plainLen+16:
		return fmt.Errorf("%w: ciphertext of %d bytes for a %d-byte block", ErrMalformedBlock, len(blk.Ciphertext), p.plainLen)
	}
	p.fill(blk.Crypto, blk.IV, blk.Ciphertext, false)
	return nil
}

// encrypt prepares a verified block: AES-256-CBC under Kp[0:32] with a
// random IV (protocols.md §3.6: both key readings decrypt it).
func (p *putPlan) encrypt(plain []byte) error {
	var iv [ivSize]byte
	if _, err := rand.Read(iv[:]); err != nil {
		return fmt.Errorf("random IV: %w", err)
	}
	ct, err := pccrr.EncryptBlock(p.secret, pccrr.CryptoAES256, iv[:], plain)
	if err != nil {
		return fmt.Errorf("encrypt: %w", err)
	}
	p.fill(pccrr.CryptoAES256, iv[:], ct, true)
	return nil
}

// fill records what goes into the block's pack entry: its header, the
// IV and the ciphertext, written as they are (no copy).
func (p *putPlan) fill(crypto pccrr.CryptoAlgo, iv, ct []byte, verified bool) {
	if verified {
		p.userMeta |= metaVerified
	}
	if len(ct) == roundUp16(p.plainLen)+16 {
		p.userMeta |= metaPadded
	}
	p.crypto, p.iv, p.ct = crypto, iv, ct
	p.crc = crc32.Update(crc32.Update(0, crc32.MakeTable(crc32.Castagnoli), iv), crc32.MakeTable(crc32.Castagnoli), ct)
	fillPackHeader(p.header[:], p.segmentID, p.index, byte(crypto), p.userMeta, uint32(len(iv)+len(ct)), p.crc)
}

// parts are the pack entry's bytes, in order.
func (p *putPlan) parts() [][]byte { return [][]byte{p.header[:], p.iv, p.ct} }

func (p *putPlan) span() int64 { return int64(packHeader + len(p.iv) + len(p.ct)) }

// entry is the index entry for the block written at offset of pack.
func (p *putPlan) entry(pack uint32, offset int64) packEntry {
	return packEntry{crypto: byte(p.crypto), flags: p.userMeta, pack: pack, offset: offset,
		length: uint32(len(p.iv) + len(p.ct)), payload: p.crc}
}

// ReadBlock copies a held block into buf and returns it, IV and
// Ciphertext slicing buf: serving allocates nothing in proportion to the
// block and does no cryptography. buf needs room for the IV and the
// ciphertext (MaxBlockBytes always suffices). ErrNotFound if the block
// is not held; a block whose stored bytes fail their checksum is dropped
// and reported as ErrCorrupt, which also matches ErrNotFound. The read
// counts as an access of the segment (LRU order, hits).
func (s *Store) ReadBlock(ctx context.Context, segmentID []byte, index uint32, buf []byte) (Block, error) {
	if err := ctx.Err(); err != nil {
		return Block{}, err
	}
	if validID(segmentID) != nil || index >= pccrr.MaxBlocks {
		return Block{}, ErrNotFound
	}
	if err := s.readLock(); err != nil {
		return Block{}, err
	}
	defer s.mu.RUnlock()
	settled := s.pending.settled.Load() // before the transaction (entry says why)
	txn := s.db.NewTransaction(false)
	defer txn.Discard()
	e, err := s.entry(txn, settled, segmentID, index)
	if err != nil {
		return Block{}, err
	}
	if len(buf) < int(e.length) {
		return Block{}, blockErr("read", segmentID, index, fmt.Errorf("%w: %d bytes, need %d", ErrShortBuffer, len(buf), e.length))
	}
	if err := s.readEntry(&e, buf); err != nil {
		return Block{}, s.readFailed(segmentID, index, err)
	}
	blk := Block{Crypto: pccrr.CryptoAlgo(e.crypto), IV: buf[:ivSize:ivSize], Ciphertext: buf[ivSize:e.length:e.length]}
	s.access.touch(segmentID, s.opt.Now().UnixNano())
	return blk, nil
}

// entry reads a block's index entry, or the entry of a block queued by
// PutBlock and not yet committed. settled is the pending count of
// settled blocks read before txn began: a block whose commit landed
// after txn began and which then left the pending set is in neither
// place txn and the pending set show, so if any block settled since, a
// miss is checked again with a fresh transaction, which sees the commit.
func (s *Store) entry(txn *badger.Txn, settled uint64, segmentID []byte, index uint32) (packEntry, error) {
	var keyBuf [2 + 64 + 2]byte
	key := append(append(append(keyBuf[:0], prefixBlock, byte(len(segmentID))), segmentID...), byte(index>>8), byte(index))
	var e packEntry
	item, err := txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		var ok bool
		if e, ok = s.pending.get(segmentID, index); ok {
			return e, nil
		}
		if s.pending.settled.Load() == settled {
			return e, ErrNotFound
		}
		fresh := s.db.NewTransaction(false)
		defer fresh.Discard()
		item, err = fresh.Get(key)
	}
	switch {
	case errors.Is(err, badger.ErrKeyNotFound):
		return e, ErrNotFound
	case err != nil:
		return e, blockErr("read", segmentID, index, err)
	default:
		if err := item.Value(e.unmarshal); err != nil {
			return e, s.readFailed(segmentID, index, err)
		}
	}
	return e, nil
}

// readEntry reads a block's payload from its pack into buf, checking its
// CRC32C.
func (s *Store) readEntry(e *packEntry, buf []byte) error {
	p := s.packs.get(e.pack)
	if p == nil {
		return fmt.Errorf("%s is missing", packName(e.pack))
	}
	return p.readPayload(e, buf)
}

// readFailed handles a stored block that cannot be read back intact: it
// is never served, and it is dropped so that the next offer replaces it.
func (s *Store) readFailed(segmentID []byte, index uint32, err error) error {
	s.scheduleRepair(segmentID, index)
	s.log.Warn("store: stored block failed its check; dropping it", "segment", hexID(segmentID), "block", index, "err", err)
	return blockErr("read", segmentID, index, corruptError{err})
}

func (s *Store) scheduleRepair(segmentID []byte, index uint32) {
	select {
	case s.repairs <- blockRef{segmentID: append([]byte(nil), segmentID...), index: index}:
	default: // the writer is busy; the next read of this block asks again
	}
}
