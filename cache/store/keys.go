package store

import (
	"encoding/binary"
	"fmt"
)

// Key layout. Every key of a segment carries the ID's length before the
// ID, so IDs of different lengths (32, 48, 64 bytes) never prefix one
// another, and records and blocks sort in the same order (the open-time
// check walks both side by side).
//
//	s <len> <id>                 segment record (small, in the LSM tree)
//	h <len> <id>                 hashes: HoD, Kp, block hashes
//	b <len> <id> <index:2>       block: where it is in which pack (packs.go)
//	a <lastAccess:8> <len> <id>  LRU index, oldest first (empty value)
const (
	prefixRecord = 's'
	prefixHashes = 'h'
	prefixBlock  = 'b'
	prefixAccess = 'a'
)

func validID(id []byte) error {
	switch len(id) {
	case 32, 48, 64:
		return nil
	}
	return fmt.Errorf("segment ID of %d bytes (want 32, 48 or 64)", len(id))
}

func segmentKey(prefix byte, id []byte) []byte {
	k := make([]byte, 0, 2+len(id)+2)
	return append(append(k, prefix, byte(len(id))), id...)
}

func recordKey(id []byte) []byte { return segmentKey(prefixRecord, id) }
func hashesKey(id []byte) []byte { return segmentKey(prefixHashes, id) }

// blockPrefix is the prefix of all block keys of a segment.
func blockPrefix(id []byte) []byte { return segmentKey(prefixBlock, id) }

func blockKey(id []byte, index uint32) []byte {
	return binary.BigEndian.AppendUint16(blockPrefix(id), uint16(index))
}

func accessKey(lastAccess int64, id []byte) []byte {
	k := make([]byte, 0, 1+8+1+len(id))
	k = append(k, prefixAccess)
	k = binary.BigEndian.AppendUint64(k, uint64(max(lastAccess, 0)))
	return append(append(k, byte(len(id))), id...)
}

// parseSegmentKey splits an s/h/b key into the ID and (for blocks) the
// index. ok is false for a key that does not have the layout.
func parseSegmentKey(key []byte) (id []byte, index uint32, ok bool) {
	if len(key) < 2 {
		return nil, 0, false
	}
	n := int(key[1])
	rest := key[2:]
	switch {
	case key[0] == prefixBlock && len(rest) == n+2:
		return rest[:n], uint32(binary.BigEndian.Uint16(rest[n:])), validID(rest[:n]) == nil
	case (key[0] == prefixRecord || key[0] == prefixHashes) && len(rest) == n:
		return rest, 0, validID(rest) == nil
	}
	return nil, 0, false
}

func parseAccessKey(key []byte) (lastAccess int64, id []byte, ok bool) {
	if len(key) < 10 || key[0] != prefixAccess {
		return 0, nil, false
	}
	lastAccess = int64(binary.BigEndian.Uint64(key[1:9]))
	n := int(key[9])
	if len(key) != 10+n || validID(key[10:]) != nil {
		return 0, nil, false
	}
	return lastAccess, key[10:], true
}
