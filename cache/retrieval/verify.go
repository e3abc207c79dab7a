package retrieval

import (
	"crypto/subtle"
	"fmt"

	"github.com/outpost-appliance/outpost/peerdist/pccrc"
	"github.com/outpost-appliance/outpost/peerdist/pccrr"
)

// Plaintext decrypts a fetched block of a segment whose content information
// is known and checks it: a V1 block against its block hash, a V2 segment
// (always block 0) against its HoD. Decryption follows protocols.md §3.6:
// the header's key length from Kp first, then the full 32-byte Kp. An error
// wrapping pccrr.ErrVerify means the bytes are not the content.
func Plaintext(algo pccrc.HashAlgo, seg *pccrc.Segment, index uint32, blk *pccrr.Blk) ([]byte, error) {
	var plainLen int
	var verify func([]byte) bool
	if algo == pccrc.TruncatedSHA512 {
		if index != 0 {
			return nil, fmt.Errorf("retrieval: V2 segments have only block 0, not %d", index)
		}
		plainLen = int(seg.Size)
		verify = func(plain []byte) bool {
			return subtle.ConstantTimeCompare(algo.Sum(plain), seg.HashOfData) == 1
		}
	} else {
		if int(index) >= len(seg.BlockHashes) {
			return nil, fmt.Errorf("retrieval: block %d has no hash in the content information (%d listed)", index, len(seg.BlockHashes))
		}
		_, n := pccrc.BlockSpan(seg.Size, int(index))
		plainLen = int(n)
		want := seg.BlockHashes[index]
		verify = func(plain []byte) bool { return pccrc.VerifyBlock(algo, want, plain) }
	}
	plain, err := pccrr.DecryptBlock(seg.Secret, blk.Crypto, blk.IV, blk.Block, plainLen, verify)
	if err != nil {
		return nil, fmt.Errorf("retrieval: block %d: %w", index, err)
	}
	return plain, nil
}
