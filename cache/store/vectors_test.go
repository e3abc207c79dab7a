package store

import (
	"bytes"
	"context"
	"testing"

	"github.com/outpost-appliance/outpost/peerdist/pccrc"
	"github.com/outpost-appliance/outpost/peerdist/pccrr"
	"github.com/outpost-appliance/outpost/peerdist/pchc"
	"github.com/outpost-appliance/outpost/peerdist/vectors"
)

// mstestSummary is the part of mstest-vectors/derived/summary.json used here.
type mstestSummary struct {
	MultipleBlocks struct {
		Size int `json:"size"`
		V1   struct {
			Segments []struct {
				HoD           string `json:"hod"`
				Kp            string `json:"kp"`
				HoHoDk        string `json:"hohodk"`
				BlockHash0    string `json:"blockhash0"`
				BlockHashLast string `json:"blockhash_last"`
			} `json:"segments"`
		} `json:"v1"`
		V2 struct {
			HoD    string `json:"hod"`
			Kp     string `json:"kp"`
			HoHoDk string `json:"hohodk"`
		} `json:"v2_single_segment_assumption"`
	} `json:"MultipleBlocks.txt"`
}

// The MS test suite's MultipleBlocks.txt (80 896 zero bytes) flows through
// the store as a hosted cache would see it: SEGMENT_INFO (as the suite
// sends it), the golden MSG_BLKs for block 1 under both key readings,
// then serving. The V2 form goes in by BATCHED_OFFER (replay) and by
// content information (verified).
func TestMSTestMultipleBlocks(t *testing.T) {
	ctx := context.Background()
	var sum mstestSummary
	vectors.JSON(t, &sum, "mstest-vectors", "derived", "summary.json")
	golden := vectors.GoldenTable(t, "mstest-vectors", "derived", "golden_messages.txt")
	mb := sum.MultipleBlocks
	zeros := make([]byte, mb.Size)
	seg0 := mb.V1.Segments[0]
	wantID := vectors.Hex(t, seg0.HoHoDk)
	kp := vectors.Hex(t, seg0.Kp)

	msg, err := pchc.ParseRequest(vectors.Lookup(t, golden, "pchc_segment_info_v1_as_suite_sends"))
	if err != nil {
		t.Fatal(err)
	}
	segInfo := msg.(pchc.SegmentInfo)
	ci, err := segInfo.ContentInfo()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ci.Segments[0].BlockHashes[0], vectors.Hex(t, seg0.BlockHash0)) ||
		!bytes.Equal(ci.Segments[0].BlockHashes[1], vectors.Hex(t, seg0.BlockHashLast)) {
		t.Fatal("SEGMENT_INFO block hashes differ from summary.json")
	}

	for _, name := range []string{"pccrr_blk_seg0_blk1_key16_aes128", "pccrr_blk_seg0_blk1_key32_aes256"} {
		t.Run(name, func(t *testing.T) {
			s := openStore(t, testOptions(t, t.TempDir(), nil))
			id, err := s.AddSegmentInfo(ctx, ci.Version, ci.Algo, ci.Segments[0], segInfo.ContentTag[:])
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(id, wantID) {
				t.Fatalf("segment ID %x, summary.json says %x", id, wantID)
			}
			resp, err := pccrr.ParseResponse(vectors.Lookup(t, golden, name))
			if err != nil {
				t.Fatal(err)
			}
			blk := resp.(*pccrr.Blk)
			res, err := s.PutBlock(ctx, id, blk.BlockIndex, Block{Crypto: blk.Crypto, IV: blk.IV, Ciphertext: blk.Block})
			if err != nil || !res.Verified {
				t.Fatalf("PutBlock of the golden MSG_BLK: %+v, %v", res, err)
			}
			// Block 0 as an iPXE-reading client would send it.
			iv := make([]byte, 16)
			ct, _ := pccrr.EncryptBlock(kp, pccrr.CryptoAES128, iv, zeros[:pccrc.BlockSize])
			if _, err := s.PutBlock(ctx, id, 0, Block{Crypto: pccrr.CryptoAES128, IV: iv, Ciphertext: ct}); err != nil {
				t.Fatal(err)
			}
			mustSync(t, s)
			info, err := s.Segment(ctx, id)
			if err != nil || !info.Complete() || info.Verified != info.Held || !info.HashesKnown {
				t.Fatalf("segment %+v, %v", info, err)
			}
			buf := make([]byte, MaxBlockBytes)
			served, err := s.ReadBlock(ctx, id, 1, buf)
			if err != nil {
				t.Fatal(err)
			}
			if served.Crypto != pccrr.CryptoAES256 || len(served.Ciphertext) != 15376 {
				t.Fatalf("served %v with %d bytes of ciphertext, want AES_256 and 15376", served.Crypto, len(served.Ciphertext))
			}
			if got := decryptServed(t, kp, served, 15360); !bytes.Equal(got, zeros[:15360]) {
				t.Fatal("served block 1 does not decrypt to 15360 zero bytes")
			}
			checkContents(t, s)
		})
	}

	t.Run("V2 replay then content information", func(t *testing.T) {
		s := openStore(t, testOptions(t, t.TempDir(), nil))
		msg, err := pchc.ParseRequest(vectors.Lookup(t, golden, "pchc_batched_offer_v2"))
		if err != nil {
			t.Fatal(err)
		}
		d := msg.(pchc.BatchedOffer).Segments[0]
		if d.HashAlgorithm != pchc.HashTruncatedSHA512 {
			t.Fatalf("hash algorithm %#x", d.HashAlgorithm)
		}
		id := d.HoHoDk[:]
		if !bytes.Equal(id, vectors.Hex(t, mb.V2.HoHoDk)) {
			t.Fatalf("offered ID %x, summary.json says %s", id, mb.V2.HoHoDk)
		}
		if err := s.AddOffer(ctx, SegmentOffer{SegmentID: id, Version: pccrc.V2, Size: d.SegmentSize, ContentTag: d.ContentTag}); err != nil {
			t.Fatal(err)
		}
		v2kp := vectors.Hex(t, mb.V2.Kp)
		iv := bytes.Repeat([]byte{7}, 16)
		ct, _ := pccrr.EncryptBlock(v2kp, pccrr.CryptoAES128, iv, zeros)
		res, err := s.PutBlock(ctx, id, 0, Block{Crypto: pccrr.CryptoAES128, IV: iv, Ciphertext: ct})
		if err != nil || res.Verified {
			t.Fatalf("replay put: %+v, %v", res, err)
		}
		mustSync(t, s)
		served, err := s.ReadBlock(ctx, id, 0, make([]byte, MaxBlockBytes))
		if err != nil || !bytes.Equal(served.Ciphertext, ct) || !bytes.Equal(served.IV, iv) || served.Crypto != pccrr.CryptoAES128 {
			t.Fatalf("replayed block not byte-identical (%v)", err)
		}
		// Content information arrives later (the appliance fetched it): the
		// replayed block is verified and re-encrypted.
		ciV2, err := pccrc.Parse(vectors.Read(t, "mstest-vectors", "derived", "v2_MultipleBlocks_contentinfo_1seg.bin"))
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.AddSegmentInfo(ctx, ciV2.Version, ciV2.Algo, ciV2.Segments[0], nil)
		if err != nil || !bytes.Equal(got, id) {
			t.Fatalf("AddSegmentInfo: %x, %v", got, err)
		}
		info, _ := s.Segment(ctx, id)
		if !info.HashesKnown || info.Verified.Len() != 1 {
			t.Fatalf("after content information: %+v", info)
		}
		served, err = s.ReadBlock(ctx, id, 0, make([]byte, MaxBlockBytes))
		if err != nil || served.Crypto != pccrr.CryptoAES256 {
			t.Fatalf("served %v, %v", served.Crypto, err)
		}
		if !bytes.Equal(decryptServed(t, v2kp, served, len(zeros)), zeros) {
			t.Fatal("verified V2 block does not decrypt to the content")
		}
		checkContents(t, s)
	})
}
