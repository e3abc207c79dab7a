package store

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/outpost-appliance/outpost/peerdist/pccrc"
	"github.com/outpost-appliance/outpost/peerdist/pccrr"
	"github.com/outpost-appliance/outpost/peerdist/pchc"
)

// record is what the store keeps about a segment, beside its blocks and
// hashes. It is small (228 bytes) so it lives in the LSM tree and is
// rewritten in the same transaction as every block it gains.
type record struct {
	version     pccrc.Version
	algo        pccrc.HashAlgo
	hashesKnown bool
	size        uint32
	firstSeen   int64 // unix nanoseconds
	lastAccess  int64 // unix nanoseconds; also the LRU index key
	hits        uint64
	tags        tagSet
	held        pccrr.BlockSet
	verified    pccrr.BlockSet // subset of held: hash-checked on the way in
	// padded marks held blocks whose ciphertext is one AES block longer
	// than the shortest possible (PKCS#7 of a multiple of 16, or a
	// replayed block sent that way), so bytes can be counted from the
	// record and the keys alone.
	padded pccrr.BlockSet
}

const (
	recordFormat   = 1
	recordSize     = 228
	flagHashesKnow = 1 << 0
)

func (r *record) marshal() []byte {
	b := make([]byte, recordSize)
	b[0] = recordFormat
	b[1] = byte(r.version)
	b[2] = byte(r.algo)
	if r.hashesKnown {
		b[3] |= flagHashesKnow
	}
	binary.BigEndian.PutUint32(b[4:], r.size)
	binary.BigEndian.PutUint64(b[8:], uint64(r.firstSeen))
	binary.BigEndian.PutUint64(b[16:], uint64(r.lastAccess))
	binary.BigEndian.PutUint64(b[24:], r.hits)
	b[32] = byte(r.tags)
	putBlockSet(b[36:], &r.held)
	putBlockSet(b[100:], &r.verified)
	putBlockSet(b[164:], &r.padded)
	return b
}

func (r *record) unmarshal(b []byte) error {
	if len(b) != recordSize || b[0] != recordFormat {
		return fmt.Errorf("segment record of %d bytes, format %d", len(b), firstByte(b))
	}
	r.version = pccrc.Version(b[1])
	r.algo = pccrc.HashAlgo(b[2])
	r.hashesKnown = b[3]&flagHashesKnow != 0
	r.size = binary.BigEndian.Uint32(b[4:])
	r.firstSeen = int64(binary.BigEndian.Uint64(b[8:]))
	r.lastAccess = int64(binary.BigEndian.Uint64(b[16:]))
	r.hits = binary.BigEndian.Uint64(b[24:])
	r.tags = tagSet(b[32])
	getBlockSet(b[36:], &r.held)
	getBlockSet(b[100:], &r.verified)
	getBlockSet(b[164:], &r.padded)
	if r.version != pccrc.V1 && r.version != pccrc.V2 {
		return fmt.Errorf("segment record of content version %d", r.version)
	}
	return nil
}

func firstByte(b []byte) int {
	if len(b) == 0 {
		return -1
	}
	return int(b[0])
}

func putBlockSet(b []byte, s *pccrr.BlockSet) {
	for i, w := range s {
		binary.LittleEndian.PutUint64(b[8*i:], w)
	}
}

func getBlockSet(b []byte, s *pccrr.BlockSet) {
	for i := range s {
		s[i] = binary.LittleEndian.Uint64(b[8*i:])
	}
}

// blockCount is the number of blocks of the segment (V2: one).
func (r *record) blockCount() int {
	if r.version == pccrc.V2 {
		return 1
	}
	return pccrc.BlockCount(r.size)
}

// plainLen is the plaintext length of block index.
func (r *record) plainLen(index uint32) int {
	if r.version == pccrc.V2 {
		return int(r.size)
	}
	_, n := pccrc.BlockSpan(r.size, int(index))
	return int(n)
}

// blockBytes is what a held block counts for: its IV and ciphertext.
func (r *record) blockBytes(index uint32) int64 {
	n := int64(roundUp16(r.plainLen(index))) + ivSize
	if r.padded.Has(index) {
		n += 16
	}
	return n
}

// bytes is the segment's share of the store: held blocks plus hashes.
func (r *record) bytes() int64 {
	var n int64
	for _, br := range r.held.Ranges() {
		for i := br.Index; i < br.Index+br.Count; i++ {
			n += r.blockBytes(i)
		}
	}
	if r.hashesKnown {
		n += int64(hashesLen(r.algo, r.version, r.size))
	}
	return n
}

func roundUp16(n int) int { return (n + 15) &^ 15 }

func timeOf(unixNano int64) time.Time {
	if unixNano == 0 {
		return time.Time{}
	}
	return time.Unix(0, unixNano)
}

// hashes is what content information told us about a segment.
type hashes struct {
	algo        pccrc.HashAlgo
	hashOfData  []byte
	secret      []byte   // Kp
	blockHashes [][]byte // V1 only, complete
}

const hashesFormat = 1

// hashesLen is the marshalled size of a complete hashes value.
func hashesLen(algo pccrc.HashAlgo, version pccrc.Version, size uint32) int {
	n := 0
	if version == pccrc.V1 {
		n = pccrc.BlockCount(size)
	}
	return 4 + (2+n)*algo.Size()
}

func (h *hashes) marshal() []byte {
	l := h.algo.Size()
	b := make([]byte, 4, 4+(2+len(h.blockHashes))*l)
	b[0] = hashesFormat
	b[1] = byte(h.algo)
	binary.BigEndian.PutUint16(b[2:], uint16(len(h.blockHashes)))
	b = append(append(b, h.hashOfData...), h.secret...)
	for _, bh := range h.blockHashes {
		b = append(b, bh...)
	}
	return b
}

// keyAndHash extracts Kp and the hash a block must match (V1: its block
// hash; V2: HoD) from a marshalled hashes value, copying them.
func keyAndHash(b []byte, version pccrc.Version, index uint32) (secret, want []byte, algo pccrc.HashAlgo, err error) {
	if len(b) < 4 || b[0] != hashesFormat {
		return nil, nil, 0, fmt.Errorf("hashes value of %d bytes, format %d", len(b), firstByte(b))
	}
	algo = pccrc.HashAlgo(b[1])
	l := algo.Size()
	n := int(binary.BigEndian.Uint16(b[2:]))
	if l == 0 || len(b) != 4+(2+n)*l {
		return nil, nil, 0, fmt.Errorf("hashes value of %d bytes for %d hashes of %v", len(b), n, algo)
	}
	hod := b[4 : 4+l]
	secret = append([]byte(nil), b[4+l:4+2*l]...)
	if version == pccrc.V2 {
		return secret, append([]byte(nil), hod...), algo, nil
	}
	if int(index) >= n {
		return nil, nil, 0, fmt.Errorf("block %d of %d hashes", index, n)
	}
	off := 4 + (2+int(index))*l
	return secret, append([]byte(nil), b[off:off+l]...), algo, nil
}

// tagSet is the set of content-tag classes a segment was offered under
// (pchc.TagName), kept as bits so per-tag statistics need no strings.
type tagSet uint8

func tagOf(contentTag []byte) tagSet {
	return 1 << pchc.TagIndex(pchc.TagName(contentTag))
}

func (t tagSet) names() []string {
	var out []string
	for i, n := range pchc.TagNames() {
		if t&(1<<i) != 0 {
			out = append(out, n)
		}
	}
	return out
}
