package retrieval

import (
	"context"
	"crypto/aes"
	"crypto/rand"
	"fmt"
	"io"
	"time"

	"github.com/outpost-appliance/outpost/peerdist/pccrc"
	"github.com/outpost-appliance/outpost/peerdist/pccrr"
)

// ContentSource serves the blocks of local content described by its
// content information, as a Windows client serves what it downloaded: each
// block is read and encrypted on request (AES-256-CBC, key Kp[0:32], a fresh
// random IV, PKCS#7; protocols.md §3.6). `outpost offer` uses it to play
// the offering client; the cache serves from its store instead and never
// encrypts per request.
type ContentSource struct {
	info      *pccrc.Info
	content   io.ReaderAt // the whole content: offsets are content offsets
	bySegment map[string]int
	loaded    time.Time
}

// NewContentSource serves content (read at content offsets) described by ci.
func NewContentSource(ci *pccrc.Info, content io.ReaderAt) *ContentSource {
	s := &ContentSource{info: ci, content: content, bySegment: make(map[string]int, len(ci.Segments)), loaded: time.Now()}
	for i := range ci.Segments {
		s.bySegment[string(ci.ID(i))] = i
	}
	return s
}

// Segment reports every block the content information lists as held.
func (s *ContentSource) Segment(_ context.Context, segmentID []byte) (SegmentState, error) {
	i, ok := s.bySegment[string(segmentID)]
	if !ok {
		return SegmentState{}, ErrNotFound
	}
	state := SegmentState{FirstSeen: s.loaded}
	if s.info.Version == pccrc.V2 {
		state.Held.Set(0)
	} else {
		state.Held.SetRange(pccrr.BlockRange{Index: 0, Count: uint32(len(s.info.Segments[i].BlockHashes))})
	}
	return state, nil
}

// ReadBlock reads a block of the content and encrypts it.
func (s *ContentSource) ReadBlock(_ context.Context, segmentID []byte, index uint32, buf []byte) (Block, error) {
	i, ok := s.bySegment[string(segmentID)]
	if !ok {
		return Block{}, ErrNotFound
	}
	seg := &s.info.Segments[i]
	offset, length := seg.Offset, seg.Size
	if s.info.Version == pccrc.V1 {
		if int(index) >= len(seg.BlockHashes) {
			return Block{}, ErrNotFound
		}
		off, n := pccrc.BlockSpan(seg.Size, int(index))
		offset, length = offset+uint64(off), n
	} else if index != 0 {
		return Block{}, ErrNotFound
	}
	if int(length)+aes.BlockSize > len(buf) {
		return Block{}, fmt.Errorf("retrieval: block of %d bytes does not fit a %d-byte buffer", length, len(buf))
	}
	plain, iv := buf[:length], buf[length:length+aes.BlockSize]
	if n, err := s.content.ReadAt(plain, int64(offset)); n < int(length) {
		return Block{}, fmt.Errorf("retrieval: reading content at %d: %w", offset, err)
	}
	if _, err := rand.Read(iv); err != nil {
		return Block{}, err
	}
	// Encrypting per request allocates; fine for an offering client, which
	// serves each block about once.
	ct, err := pccrr.EncryptBlock(seg.Secret, pccrr.CryptoAES256, iv, plain)
	if err != nil {
		return Block{}, err
	}
	return Block{Crypto: pccrr.CryptoAES256, Ciphertext: ct, IV: iv}, nil
}
