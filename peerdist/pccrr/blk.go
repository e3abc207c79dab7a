package pccrr

import (
	"crypto/aes"
	"fmt"
)

// Blk is MSG_BLK: one block (for V2 content, one whole segment as block 0),
// encrypted as Crypto says, and the IV. An empty Block means "don't have
// it". SegmentID, Block and IV alias the decoded input.
//
// VrfBlock is a dead field: it is skipped on receipt and always sent empty.
//
// Rules (shared by encoder and decoder): BlockIndex and NextBlockIndex are
// 0-511; IV is empty or 16 bytes; an AES block is a multiple of 16 bytes
// with a 16-byte IV; a CryptoNone block is a multiple of 4 bytes, because
// iPXE's parser assumes there is no ZeroPad_2 after the block
// (protocols.md §3.4, §10). The ZeroPad_2 is still read and written by the
// rules; with these lengths it is always empty.
type Blk struct {
	Crypto         CryptoAlgo
	SegmentID      []byte
	BlockIndex     uint32
	NextBlockIndex uint32
	Block          []byte
	IV             []byte
}

func (m *Blk) Type() MsgType { return MsgBlk }

func (m *Blk) msgSize() int {
	return HeaderSize + paddedLen(m.SegmentID) + 8 + paddedLen(m.Block) + 4 + 4 + len(m.IV)
}

func (m *Blk) validate() error {
	if err := checkCrypto(m.Crypto); err != nil {
		return err
	}
	if m.BlockIndex >= MaxBlocks || m.NextBlockIndex >= MaxBlocks {
		return malformed("BlockIndex %d / NextBlockIndex %d above 511", m.BlockIndex, m.NextBlockIndex)
	}
	if len(m.IV) != 0 && len(m.IV) != aes.BlockSize {
		return malformed("IVBlock of %d bytes, want 0 or 16", len(m.IV))
	}
	switch {
	case len(m.Block) == 0:
	case m.Crypto == CryptoNone:
		if len(m.Block)%4 != 0 {
			return malformed("plaintext block of %d bytes is not a multiple of 4", len(m.Block))
		}
	default:
		if len(m.Block)%aes.BlockSize != 0 {
			return malformed("%v block of %d bytes is not a multiple of 16", m.Crypto, len(m.Block))
		}
		if len(m.IV) != aes.BlockSize {
			return malformed("%v block without a 16-byte IV", m.Crypto)
		}
	}
	return nil
}

// AppendHead appends everything before the block: transport header,
// MESSAGE_HEADER, SegmentId, BlockIndex, NextBlockIndex and SizeOfBlock.
// Only len(m.Block) is used, so a server can send
// net.Buffers{head, storedCiphertext, tail} without copying the block:
//
//	head, err := m.AppendHead(buf[:0])
//	tail := m.AppendTail(head[len(head):])
//
// With a 128-byte buf (enough for a 32-byte segment ID) neither allocates.
// Head, block and tail together are exactly what Marshal produces.
func (m *Blk) AppendHead(dst []byte) ([]byte, error) {
	out, err := appendHead(dst, m)
	if err != nil {
		return dst, err
	}
	return m.appendFields(out), nil
}

// AppendTail appends everything after the block: ZeroPad_2, an empty
// VrfBlock and the IV. Call it only after AppendHead accepted m.
func (m *Blk) AppendTail(dst []byte) []byte {
	dst = appendPad(dst, len(m.Block))
	dst = appendU32(dst, 0) // SizeOfVrfBlock; empty, so no ZeroPad_3
	return appendSized(dst, m.IV)
}

func (m *Blk) AppendTo(dst []byte) ([]byte, error) { return appendMessage(dst, m) }
func (m *Blk) Marshal() ([]byte, error)            { return marshal(m) }

// appendFields appends the body fields before the block.
func (m *Blk) appendFields(dst []byte) []byte {
	dst = appendPadded(dst, m.SegmentID)
	dst = appendU32(dst, m.BlockIndex)
	dst = appendU32(dst, m.NextBlockIndex)
	return appendU32(dst, uint32(len(m.Block)))
}

func (m *Blk) appendBody(dst []byte) []byte {
	return m.AppendTail(append(m.appendFields(dst), m.Block...))
}

func parseBlk(r *reader, h Header) *Blk {
	m := &Blk{Crypto: h.Crypto}
	m.SegmentID = r.padded("SegmentId")
	m.BlockIndex = r.u32("BlockIndex")
	m.NextBlockIndex = r.u32("NextBlockIndex")
	m.Block = r.padded("Block")
	r.padded("VrfBlock") // unused by the protocol
	m.IV = r.sized("IVBlock")
	return m
}

// String summarises m without dumping the block.
func (m *Blk) String() string {
	return fmt.Sprintf("MSG_BLK{%x block %d next %d %v %d bytes iv %x}",
		m.SegmentID, m.BlockIndex, m.NextBlockIndex, m.Crypto, len(m.Block), m.IV)
}
