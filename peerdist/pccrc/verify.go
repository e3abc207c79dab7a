package pccrc

import (
	"bytes"
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
)

// VerifyError names the first segment (and, for V1, block) whose data or
// hashes do not match the content information.
type VerifyError struct {
	Segment int    // index in the content information's segment list
	Block   int    // V1 block index in the segment; -1 for the segment as a whole
	Offset  uint64 // content offset of the segment or block
	Reason  string
}

func (e *VerifyError) Error() string {
	if e.Block < 0 {
		return fmt.Sprintf("pccrc: segment %d (offset %d): %s", e.Segment, e.Offset, e.Reason)
	}
	return fmt.Sprintf("pccrc: segment %d block %d (offset %d): %s", e.Segment, e.Block, e.Offset, e.Reason)
}

// ErrMismatch is wrapped by checks that compare data with a hash.
var ErrMismatch = errors.New("hash mismatch")

// VerifyBlock reports whether data hashes to want under algo. The cache
// calls it on every V1 block before accepting it.
func VerifyBlock(algo HashAlgo, want, data []byte) bool {
	return subtle.ConstantTimeCompare(algo.Sum(data), want) == 1
}

// CheckHashOfData checks a V1 segment's HoD against its block-hash list.
// HoD covers every block of the segment, so a list cut short by a range
// request cannot be checked and is reported as such.
func (s *Segment) CheckHashOfData(algo HashAlgo) error {
	if len(s.BlockHashes) != BlockCount(s.Size) {
		return fmt.Errorf("pccrc: %d of %d block hashes listed, HoD cannot be checked", len(s.BlockHashes), BlockCount(s.Size))
	}
	h := algo.New()
	for _, bh := range s.BlockHashes {
		h.Write(bh)
	}
	if !bytes.Equal(h.Sum(nil)[:algo.Size()], s.HashOfData) {
		return fmt.Errorf("pccrc: HoD does not match the block hashes: %w", ErrMismatch)
	}
	return nil
}

// CheckSecrets checks every segment's Kp against the content server's
// secret; only a holder of that secret (the content server, or an admin
// who exported its key) can do this.
func (ci *Info) CheckSecrets(serverSecret []byte) error {
	ks := ci.Algo.ServerKey(serverSecret)
	for i, s := range ci.Segments {
		if !bytes.Equal(ci.Algo.SegmentSecret(ks, s.HashOfData), s.Secret) {
			return &VerifyError{Segment: i, Block: -1, Offset: s.Offset, Reason: "segment secret (Kp) was not made with this server secret"}
		}
	}
	return nil
}

// Verify checks content against ci: for V1 every listed block against its
// hash and (where the list is complete) HoD against the block hashes; for
// V2 every segment against its HoD. r reads the whole content (offsets are
// content offsets). The first failure is returned as a *VerifyError.
func (ci *Info) Verify(ctx context.Context, r io.ReaderAt) error {
	if err := ci.Validate(); err != nil {
		return err
	}
	buf := make([]byte, 0, max(BlockSize, MaxSegmentSizeV2))
	for i := range ci.Segments {
		if err := ctx.Err(); err != nil {
			return err
		}
		s := &ci.Segments[i]
		if ci.Version == V2 {
			if reason := readAndCheck(r, buf[:s.Size], s.Offset, ci.Algo, s.HashOfData); reason != "" {
				return &VerifyError{Segment: i, Block: -1, Offset: s.Offset, Reason: reason}
			}
			continue
		}
		if len(s.BlockHashes) == BlockCount(s.Size) {
			if err := s.CheckHashOfData(ci.Algo); err != nil {
				return &VerifyError{Segment: i, Block: -1, Offset: s.Offset, Reason: "HoD does not match the block hashes"}
			}
		}
		for b, want := range s.BlockHashes {
			off, n := BlockSpan(s.Size, b)
			at := s.Offset + uint64(off)
			if reason := readAndCheck(r, buf[:n], at, ci.Algo, want); reason != "" {
				return &VerifyError{Segment: i, Block: b, Offset: at, Reason: reason}
			}
		}
	}
	return nil
}

func readAndCheck(r io.ReaderAt, buf []byte, off uint64, algo HashAlgo, want []byte) string {
	if n, err := r.ReadAt(buf, int64(off)); n < len(buf) {
		return fmt.Sprintf("data ends early (read %d of %d bytes: %v)", n, len(buf), err)
	}
	if !VerifyBlock(algo, want, buf) {
		return "data does not match its hash"
	}
	return ""
}
