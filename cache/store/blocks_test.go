package store

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/outpost-appliance/outpost/peerdist/pccrc"
	"github.com/outpost-appliance/outpost/peerdist/pccrr"
)

// V1 blocks whose hashes are known are decrypted under every key reading
// a client may use, verified, and served re-encrypted with AES-256 and
// Kp[0:32], which both readings decrypt.
func TestPutBlockVerifiesAndReencrypts(t *testing.T) {
	cases := []struct {
		name   string
		size   int
		crypto pccrr.CryptoAlgo
		// fullKey encrypts with AES-256 and all of Kp whatever the header
		// says, as the MS test suite does.
		fullKey bool
	}{
		{"1 byte AES-128", 1, pccrr.CryptoAES128, false},
		{"one block AES-128", pccrc.BlockSize, pccrr.CryptoAES128, false},
		{"two blocks AES-192", pccrc.BlockSize + 15360, pccrr.CryptoAES192, false},
		{"three blocks AES-256", 3*pccrc.BlockSize - 5, pccrr.CryptoAES256, false},
		{"AES-128 header, full 32-byte key", 2 * pccrc.BlockSize, pccrr.CryptoAES128, true},
		{"plaintext (CryptoAlgoId 0)", 1000, pccrr.CryptoNone, false},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			s := openStore(t, testOptions(t, t.TempDir(), nil))
			c := v1Content(uint64(i+1), tc.size)
			mustAddInfo(t, s, c, "BITS-4.0")
			for b := range c.blocks() {
				blk := c.msgBlk(t, b, tc.crypto, uint64(b))
				if tc.fullKey {
					full := c.msgBlk(t, b, pccrr.CryptoAES256, uint64(b))
					blk.Ciphertext = full.Ciphertext
				}
				res, err := s.PutBlock(ctx, c.id, uint32(b), blk)
				if err != nil {
					t.Fatalf("PutBlock %d: %v", b, err)
				}
				if !res.Stored || !res.Verified {
					t.Fatalf("PutBlock %d: %+v, want stored and verified", b, res)
				}
			}
			mustSync(t, s)
			buf := make([]byte, MaxBlockBytes)
			for b := range c.blocks() {
				blk, err := s.ReadBlock(ctx, c.id, uint32(b), buf)
				if err != nil {
					t.Fatalf("ReadBlock %d: %v", b, err)
				}
				if blk.Crypto != pccrr.CryptoAES256 || len(blk.IV) != 16 || len(blk.Ciphertext)%16 != 0 {
					t.Fatalf("block %d served as %v, IV %d, ciphertext %d bytes", b, blk.Crypto, len(blk.IV), len(blk.Ciphertext))
				}
				want := c.block(b)
				if got := decryptServed(t, c.seg.Secret, blk, len(want)); !bytes.Equal(got, want) {
					t.Fatalf("block %d decrypts to other bytes", b)
				}
				// The MS test suite's reading: AES with the whole Kp.
				if got := decryptServed(t, c.seg.Secret[:32], blk, len(want)); !bytes.Equal(got, want) {
					t.Fatalf("block %d does not decrypt with the full key", b)
				}
			}
			info, err := s.Segment(ctx, c.id)
			if err != nil {
				t.Fatal(err)
			}
			if !info.HashesKnown || !info.Complete() || info.Verified != info.Held || info.Tags[0] != "BITS-4.0" {
				t.Fatalf("segment info %+v", info)
			}
			checkContents(t, s)
		})
	}
}

// A block that does not match its hash is refused with an error naming
// the segment and the block, and nothing is stored.
func TestPutBlockRejectsMismatch(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, testOptions(t, t.TempDir(), nil))
	c := v1Content(7, 2*pccrc.BlockSize)
	mustAddInfo(t, s, c, "WebIO")
	bad := v1Content(8, 2*pccrc.BlockSize) // same shape, other data, other key
	blk := c.msgBlk(t, 1, pccrr.CryptoAES128, 1)
	blk.Ciphertext[100] ^= 1
	for name, b := range map[string]Block{
		"flipped bit":   blk,
		"another block": bad.msgBlk(t, 1, pccrr.CryptoAES128, 1),
	} {
		_, err := s.PutBlock(ctx, c.id, 1, b)
		var be *BlockError
		if !errors.Is(err, ErrVerify) || !errors.As(err, &be) || be.Index != 1 || !bytes.Equal(be.SegmentID, c.id) {
			t.Fatalf("%s: PutBlock error %v, want a BlockError for block 1 wrapping ErrVerify", name, err)
		}
		if msg := err.Error(); !strings.Contains(msg, hexID(c.id)) || !strings.Contains(msg, "block 1") {
			t.Fatalf("%s: error %q does not name segment and block", name, msg)
		}
	}
	if _, err := s.ReadBlock(ctx, c.id, 1, make([]byte, MaxBlockBytes)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("ReadBlock after a refused put: %v, want ErrNotFound", err)
	}
	if st := s.Stats(); st.Blocks != 0 {
		t.Fatalf("%d blocks stored after refused puts", st.Blocks)
	}
}

// Blocks offered without hashes (V2 BATCHED_OFFER) are kept exactly as
// received and served back byte for byte; only their shape is checked.
func TestReplayIsByteIdentical(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, testOptions(t, t.TempDir(), nil))
	for i, size := range []int{1, 16, 15000, 60320, 39390, pccrc.MaxSegmentSizeV2} {
		r := newReplay(uint64(i), size)
		ingestReplay(t, s, r, "WinINet")
		res, err := s.PutBlock(ctx, r.id, 0, r.block)
		if err != nil || res.Stored {
			t.Fatalf("second put of the same block: %+v, %v; want not stored, no error", res, err)
		}
		blk, err := s.ReadBlock(ctx, r.id, 0, make([]byte, MaxBlockBytes))
		if err != nil {
			t.Fatal(err)
		}
		if blk.Crypto != r.block.Crypto || !bytes.Equal(blk.IV, r.block.IV) || !bytes.Equal(blk.Ciphertext, r.block.Ciphertext) {
			t.Fatalf("size %d: replayed block differs from what was received", size)
		}
		info, _ := s.Segment(ctx, r.id)
		if info.HashesKnown || info.Verified.Len() != 0 || info.BlockCount != 1 || !info.Complete() {
			t.Fatalf("size %d: info %+v", size, info)
		}
	}
	checkContents(t, s)
}

func TestReplayShapeChecks(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, testOptions(t, t.TempDir(), nil))
	r := newReplay(1, 1000) // ciphertext 1008 bytes
	if err := s.AddOffer(ctx, SegmentOffer{SegmentID: r.id, Version: pccrc.V2, Size: 1000}); err != nil {
		t.Fatal(err)
	}
	good := r.block
	cases := map[string]Block{
		"no encryption":        {Crypto: pccrr.CryptoNone, Ciphertext: make([]byte, 1000)},
		"unknown algorithm":    {Crypto: 9, IV: good.IV, Ciphertext: good.Ciphertext},
		"no IV":                {Crypto: good.Crypto, Ciphertext: good.Ciphertext},
		"15-byte IV":           {Crypto: good.Crypto, IV: good.IV[:15], Ciphertext: good.Ciphertext},
		"not a multiple":       {Crypto: good.Crypto, IV: good.IV, Ciphertext: good.Ciphertext[:1001]},
		"shorter than data":    {Crypto: good.Crypto, IV: good.IV, Ciphertext: good.Ciphertext[:992]},
		"32 bytes too long":    {Crypto: good.Crypto, IV: good.IV, Ciphertext: make([]byte, 1040)},
		"empty block (size 0)": {Crypto: good.Crypto, IV: good.IV},
	}
	for name, blk := range cases {
		if _, err := s.PutBlock(ctx, r.id, 0, blk); !errors.Is(err, ErrMalformedBlock) {
			t.Errorf("%s: PutBlock error %v, want ErrMalformedBlock", name, err)
		}
	}
	if _, err := s.PutBlock(ctx, r.id, 1, good); !errors.Is(err, ErrMalformedBlock) {
		t.Errorf("block 1 of a V2 segment: %v, want ErrMalformedBlock", err)
	}
	if st := s.Stats(); st.Blocks != 0 {
		t.Fatalf("%d blocks stored after refused puts", st.Blocks)
	}
}

func TestPutBlockErrors(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, testOptions(t, t.TempDir(), nil))
	c := v1Content(3, 1000)
	if _, err := s.PutBlock(ctx, c.id, 0, c.msgBlk(t, 0, pccrr.CryptoAES128, 0)); !errors.Is(err, ErrUnknownSegment) {
		t.Errorf("put for an unknown segment: %v, want ErrUnknownSegment", err)
	}
	if _, err := s.PutBlock(ctx, c.id[:20], 0, Block{}); !errors.Is(err, ErrMalformedBlock) {
		t.Errorf("put with a 20-byte ID: %v, want ErrMalformedBlock", err)
	}
	if _, err := s.PutPlainBlock(ctx, c.id, 0, c.plain); !errors.Is(err, ErrUnknownSegment) {
		t.Errorf("plain put for an unknown segment: %v, want ErrUnknownSegment", err)
	}
	r := newReplay(4, 1000)
	if err := s.AddOffer(ctx, SegmentOffer{SegmentID: r.id, Version: pccrc.V2, Size: 1000}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutPlainBlock(ctx, r.id, 0, make([]byte, 1000)); !errors.Is(err, ErrNoHashes) {
		t.Errorf("plain put without hashes: %v, want ErrNoHashes", err)
	}
	mustAddInfo(t, s, c, "")
	if _, err := s.PutPlainBlock(ctx, c.id, 0, c.plain[:999]); !errors.Is(err, ErrMalformedBlock) {
		t.Errorf("short plaintext: %v, want ErrMalformedBlock", err)
	}
	if _, err := s.PutBlock(ctx, c.id, 1, c.msgBlk(t, 0, pccrr.CryptoAES128, 0)); !errors.Is(err, ErrMalformedBlock) {
		t.Errorf("block beyond the segment: %v, want ErrMalformedBlock", err)
	}
	if _, err := s.ReadBlock(ctx, c.id, 0, make([]byte, 8)); err == nil {
		t.Errorf("ReadBlock of an unheld block succeeded")
	}
	res, err := s.PutPlainBlock(ctx, c.id, 0, c.plain)
	if err != nil || !res.Stored || !res.Verified {
		t.Fatalf("PutPlainBlock: %+v, %v", res, err)
	}
	mustSync(t, s)
	if _, err := s.ReadBlock(ctx, c.id, 0, make([]byte, 100)); !errors.Is(err, ErrShortBuffer) {
		t.Errorf("ReadBlock into a small buffer: %v, want ErrShortBuffer", err)
	}
	blk, err := s.ReadBlock(ctx, c.id, 0, make([]byte, MaxBlockBytes))
	if err != nil || !bytes.Equal(decryptServed(t, c.seg.Secret, blk, 1000), c.plain) {
		t.Fatalf("ReadBlock after PutPlainBlock: %v", err)
	}
}

// ReadBlock copies into the caller's buffer and allocates nothing in
// proportion to the block.
func TestReadBlockAllocations(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, testOptions(t, t.TempDir(), nil))
	c := v1Content(5, pccrc.BlockSize)
	ingestV1(t, s, c)
	buf := make([]byte, MaxBlockBytes)
	var bytesBefore, bytesAfter uint64
	allocs := testing.AllocsPerRun(200, func() {
		if _, err := s.ReadBlock(ctx, c.id, 0, buf); err != nil {
			t.Fatal(err)
		}
	})
	bytesBefore = heapAlloc()
	for range 100 {
		s.ReadBlock(ctx, c.id, 0, buf)
	}
	bytesAfter = heapAlloc()
	perRead := (bytesAfter - bytesBefore) / 100
	t.Logf("ReadBlock: %.0f allocations, ~%d bytes per read", allocs, perRead)
	if perRead > 8<<10 {
		t.Fatalf("ReadBlock allocates %d bytes per 64 KiB block", perRead)
	}
}
