package pccrd

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
)

// blockCountDigits is the width of one V1 BlockCount: 8 hex digits, a
// 32-bit big-endian count, concatenated without separators, one per scope
// token (docs/protocols.md §5.3, §9 row 19; the spec's 4-digit example is
// wrong and iPXE parses 8).
const blockCountDigits = 8

// parseBlockCounts decodes BlockCount text. Leniency: either hex case, and
// white space between groups is tolerated (never inside a group boundary:
// every white-space-separated run must be a whole number of groups).
func parseBlockCounts(text string) ([]uint32, error) {
	runs := fieldsXML(text)
	n := 0
	for _, run := range runs {
		if len(run)%blockCountDigits != 0 {
			return nil, fmt.Errorf("%w: BlockCount %.24q… is not made of %d-digit groups", ErrMalformed, run, blockCountDigits)
		}
		n += len(run) / blockCountDigits
	}
	if n == 0 {
		return nil, fmt.Errorf("%w: empty BlockCount", ErrMalformed)
	}
	counts := make([]uint32, 0, n)
	var group [blockCountDigits / 2]byte
	for _, run := range runs {
		for i := 0; i < len(run); i += blockCountDigits {
			if _, err := hex.Decode(group[:], []byte(run[i:i+blockCountDigits])); err != nil {
				return nil, fmt.Errorf("%w: BlockCount group %q is not hex", ErrMalformed, run[i:i+blockCountDigits])
			}
			counts = append(counts, binary.BigEndian.Uint32(group[:]))
		}
	}
	return counts, nil
}

// appendBlockCounts appends counts as concatenated 8-digit upper-case hex.
func appendBlockCounts(dst []byte, counts []uint32) []byte {
	const digits = "0123456789ABCDEF"
	for _, c := range counts {
		for shift := 28; shift >= 0; shift -= 4 {
			dst = append(dst, digits[c>>uint(shift)&0xF])
		}
	}
	return dst
}
