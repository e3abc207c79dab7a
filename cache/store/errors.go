package store

import (
	"encoding/hex"
	"errors"
	"fmt"
)

// Errors a caller can test for with errors.Is.
var (
	// ErrNotFound: the segment or block is not held. A block found corrupt
	// on read also matches it (and ErrCorrupt): answer as for a miss.
	ErrNotFound = errors.New("not held")
	// ErrUnknownSegment: a block was offered for a segment the store was
	// never told about (AddOffer or AddSegmentInfo first).
	ErrUnknownSegment = errors.New("segment not offered")
	// ErrVerify: a block does not match its hash from the content
	// information; nothing was stored.
	ErrVerify = errors.New("block does not match its hash")
	// ErrMalformedBlock: a block fails the shape checks (IV length,
	// ciphertext length, algorithm); nothing was stored.
	ErrMalformedBlock = errors.New("block fails sanity checks")
	// ErrNoHashes: plaintext was offered for a segment whose hashes and
	// key are unknown, so it can be neither verified nor encrypted.
	ErrNoHashes = errors.New("segment hashes unknown")
	// ErrBadSegmentInfo: content information that cannot be used to
	// verify blocks (a block-hash list that is cut short or does not hash
	// to HoD, a size out of range).
	ErrBadSegmentInfo = errors.New("unusable segment information")
	// ErrConflict: an offer disagrees with what the store knows of the
	// segment (another size or version).
	ErrConflict = errors.New("conflicts with the stored segment")
	// ErrDiskFull: the data filesystem has no room for the block; nothing
	// was stored and the store is intact.
	ErrDiskFull = errors.New("disk full")
	// ErrCommit: blocks that were queued could not be committed (Sync
	// reports it; the log says why).
	ErrCommit = errors.New("queued blocks not stored")
	// ErrCorrupt: stored bytes failed their checksum; the block has been
	// dropped.
	ErrCorrupt = errors.New("stored block failed its checksum")
	// ErrShortBuffer: the buffer passed to ReadBlock cannot hold the block.
	ErrShortBuffer = errors.New("buffer too small for block")
	// ErrClosed: the store is closed.
	ErrClosed = errors.New("store closed")
	// ErrNewerFormat: the directory holds a store written by newer
	// firmware. It is left untouched.
	ErrNewerFormat = errors.New("store format is newer than this firmware")
	// ErrUnknownFormat: the directory holds something that is not a
	// segment store. It is left untouched.
	ErrUnknownFormat = errors.New("not a segment store")
)

// BlockError names the segment and block an operation failed on.
type BlockError struct {
	Op        string // "put", "read"
	SegmentID []byte
	Index     uint32
	Err       error
}

func (e *BlockError) Error() string {
	return fmt.Sprintf("store: %s segment %s block %d: %v", e.Op, hex.EncodeToString(e.SegmentID), e.Index, e.Err)
}

func (e *BlockError) Unwrap() error { return e.Err }

func blockErr(op string, segmentID []byte, index uint32, err error) error {
	return &BlockError{Op: op, SegmentID: append([]byte(nil), segmentID...), Index: index, Err: err}
}

// corruptError is ErrCorrupt that also reads as ErrNotFound, so a server
// answers "not held" without a special case.
type corruptError struct{ cause error }

func (e corruptError) Error() string {
	return fmt.Sprintf("%v (%v)", ErrCorrupt, e.cause)
}

func (e corruptError) Is(target error) bool { return target == ErrCorrupt || target == ErrNotFound }

func (e corruptError) Unwrap() error { return e.cause }

func hexID(segmentID []byte) string { return hex.EncodeToString(segmentID) }
