package store

import (
	"bytes"
	"context"
	"errors"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/outpost-appliance/outpost/peerdist/pccrc"
	"github.com/outpost-appliance/outpost/peerdist/pccrr"
	"github.com/outpost-appliance/outpost/peerdist/pchc"
)

func TestAddOffer(t *testing.T) {
	ctx := context.Background()
	clock := newClock()
	s := openStore(t, testOptions(t, t.TempDir(), clock))
	r := newReplay(1, 5000)
	offer := SegmentOffer{SegmentID: r.id, Version: pccrc.V2, Size: 5000, ContentTag: []byte("WinINet")}
	if err := s.AddOffer(ctx, offer); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Minute)
	smb := pchc.MakeContentTag(pchc.TagSMB)
	offer.ContentTag = smb[:]
	if err := s.AddOffer(ctx, offer); err != nil {
		t.Fatalf("second offer with another tag: %v", err)
	}
	info, err := s.Segment(ctx, r.id)
	if err != nil {
		t.Fatal(err)
	}
	if !info.FirstSeen.Equal(clock.Now().Add(-time.Minute)) || len(info.Tags) != 2 || info.HashesKnown || info.Held.Len() != 0 {
		t.Fatalf("info %+v", info)
	}
	for name, bad := range map[string]SegmentOffer{
		"other size":    {SegmentID: r.id, Version: pccrc.V2, Size: 5001},
		"other version": {SegmentID: r.id, Version: pccrc.V1, Size: 5000},
		"V2 too large":  {SegmentID: newReplay(2, 1).id, Version: pccrc.V2, Size: pccrc.MaxSegmentSizeV2 + 1},
		"V1 too large":  {SegmentID: newReplay(3, 1).id, Version: pccrc.V1, Size: pccrc.SegmentSizeV1 + 1},
		"empty":         {SegmentID: newReplay(4, 1).id, Version: pccrc.V1, Size: 0},
	} {
		if err := s.AddOffer(ctx, bad); !errors.Is(err, ErrConflict) {
			t.Errorf("%s: %v, want ErrConflict", name, err)
		}
	}
	if err := s.AddOffer(ctx, SegmentOffer{SegmentID: r.id[:31], Version: pccrc.V2, Size: 1}); err == nil {
		t.Error("offer with a 31-byte ID accepted")
	}
	st := s.Stats()
	if st.Segments != 1 || st.HeldSegments != 0 || st.Bytes != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestAddSegmentInfoRejects(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, testOptions(t, t.TempDir(), nil))
	c := v1Content(1, 3*pccrc.BlockSize)
	partial := c.seg
	partial.BlockHashes = partial.BlockHashes[:2]
	wrongHoD := c.seg
	wrongHoD.HashOfData = bytes.Repeat([]byte{1}, 32)
	badHash := c.seg
	badHash.BlockHashes = append([][]byte{c.seg.BlockHashes[0][:31]}, c.seg.BlockHashes[1:]...)
	tooBig := c.seg
	tooBig.Size = pccrc.SegmentSizeV1 + 1
	v2 := v2Content(2, 1000)
	v2withList := v2.seg
	v2withList.BlockHashes = [][]byte{v2.seg.HashOfData}
	cases := []struct {
		name    string
		version pccrc.Version
		algo    pccrc.HashAlgo
		seg     pccrc.Segment
	}{
		{"block-hash list cut short", pccrc.V1, pccrc.SHA256, partial},
		{"HoD does not match the block hashes", pccrc.V1, pccrc.SHA256, wrongHoD},
		{"short block hash", pccrc.V1, pccrc.SHA256, badHash},
		{"segment over 32 MiB", pccrc.V1, pccrc.SHA256, tooBig},
		{"V1 with the V2 algorithm", pccrc.V1, pccrc.TruncatedSHA512, c.seg},
		{"V2 with SHA-256", pccrc.V2, pccrc.SHA256, v2.seg},
		{"V2 with block hashes", pccrc.V2, pccrc.TruncatedSHA512, v2withList},
	}
	for _, tc := range cases {
		if _, err := s.AddSegmentInfo(ctx, tc.version, tc.algo, tc.seg, nil); !errors.Is(err, ErrBadSegmentInfo) {
			t.Errorf("%s: %v, want ErrBadSegmentInfo", tc.name, err)
		}
	}
	if st := s.Stats(); st.Segments != 0 {
		t.Fatalf("%d segments after refused infos", st.Segments)
	}
	mustAddInfo(t, s, c, "WinINet")
	mustAddInfo(t, s, c, "WebIO") // again: only the tag is new
	info, _ := s.Segment(ctx, c.id)
	if len(info.Tags) != 2 || !info.HashesKnown {
		t.Fatalf("info %+v", info)
	}
}

// A V1 segment offered by BATCHED_OFFER (hash algorithm 0x01) is stored
// for replay; when SEGMENT_INFO later gives its hashes, the replayed
// blocks that match are verified and kept, the others dropped.
func TestSegmentInfoVerifiesReplayedBlocks(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, testOptions(t, t.TempDir(), nil))
	sub := s.Subscribe()
	defer sub.Close()
	c := v1Content(9, 4*pccrc.BlockSize)
	if err := s.AddOffer(ctx, SegmentOffer{SegmentID: c.id, Version: pccrc.V1, Size: c.seg.Size}); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		blk := c.msgBlk(t, i, pccrr.CryptoAES128, uint64(i))
		if i == 2 {
			blk.Ciphertext[0] ^= 0xff // a poisoned replay: right shape, wrong data
		}
		res, err := s.PutBlock(ctx, c.id, uint32(i), blk)
		if err != nil || res.Verified {
			t.Fatalf("replay put %d: %+v, %v", i, res, err)
		}
	}
	mustAddInfo(t, s, c, "")
	info, _ := s.Segment(ctx, c.id)
	var want pccrr.BlockSet
	want.Set(0)
	want.Set(1)
	if info.Held != want || info.Verified != want || !info.HashesKnown {
		t.Fatalf("after SEGMENT_INFO: held %v verified %v hashes %v; want blocks 0 and 1 verified",
			info.Held.Ranges(), info.Verified.Ranges(), info.HashesKnown)
	}
	for _, i := range []int{0, 1} {
		blk, err := s.ReadBlock(ctx, c.id, uint32(i), make([]byte, MaxBlockBytes))
		if err != nil || blk.Crypto != pccrr.CryptoAES256 || !bytes.Equal(decryptServed(t, c.seg.Secret, blk, pccrc.BlockSize), c.block(i)) {
			t.Fatalf("block %d after verification: %v", i, err)
		}
	}
	// The missing blocks now go in verified.
	for _, i := range []int{2, 3} {
		if res, err := s.PutBlock(ctx, c.id, uint32(i), c.msgBlk(t, i, pccrr.CryptoAES128, 0)); err != nil || !res.Verified {
			t.Fatalf("put %d after SEGMENT_INFO: %+v, %v", i, res, err)
		}
	}
	checkContents(t, s)
	evs := drain(sub)
	if len(evs) != 1 || evs[0].Kind != SegmentAdded {
		t.Fatalf("events %+v, want one SegmentAdded", evs)
	}

	// An offer that lied about the size: the content information wins.
	d := v1Content(10, 2*pccrc.BlockSize)
	if err := s.AddOffer(ctx, SegmentOffer{SegmentID: d.id, Version: pccrc.V1, Size: 3 * pccrc.BlockSize}); err != nil {
		t.Fatal(err)
	}
	blk := d.msgBlk(t, 0, pccrr.CryptoAES128, 0)
	if _, err := s.PutBlock(ctx, d.id, 0, blk); err != nil {
		t.Fatal(err)
	}
	mustAddInfo(t, s, d, "")
	info, _ = s.Segment(ctx, d.id)
	if info.Size != d.seg.Size || info.Held.Len() != 0 || !info.HashesKnown {
		t.Fatalf("after contradicting info: %+v", info)
	}
	checkContents(t, s)
}

func TestQueriesAndListing(t *testing.T) {
	ctx := context.Background()
	clock := newClock()
	s := openStore(t, testOptions(t, t.TempDir(), clock))
	var ids [][]byte
	for i := range 25 {
		r := newReplay(uint64(100+i), 1000+i)
		ingestReplay(t, s, r, "BITS-4.0")
		ids = append(ids, r.id)
		clock.Advance(time.Second)
	}
	c := v1Content(1, 2*pccrc.BlockSize)
	mustAddInfo(t, s, c, "SMB")
	ids = append(ids, c.id)

	for _, tc := range []struct {
		id           []byte
		has, hashes  bool
		wantNotFound bool
	}{
		{ids[0], true, false, false},
		{c.id, false, true, false},
		{newReplay(999, 1).id, false, false, true},
	} {
		has, err := s.HasSegment(ctx, tc.id)
		if err != nil || has != tc.has {
			t.Errorf("HasSegment(%x) = %v, %v; want %v", tc.id[:4], has, err, tc.has)
		}
		known, err := s.HashesKnown(ctx, tc.id)
		if err != nil || known != tc.hashes {
			t.Errorf("HashesKnown(%x) = %v, %v; want %v", tc.id[:4], known, err, tc.hashes)
		}
		if _, err := s.Segment(ctx, tc.id); errors.Is(err, ErrNotFound) != tc.wantNotFound {
			t.Errorf("Segment(%x): %v", tc.id[:4], err)
		}
	}

	// Hits and last access are counted in memory and visible at once.
	clock.Advance(time.Hour)
	buf := make([]byte, MaxBlockBytes)
	for range 3 {
		if _, err := s.ReadBlock(ctx, ids[0], 0, buf); err != nil {
			t.Fatal(err)
		}
	}
	info, _ := s.Segment(ctx, ids[0])
	if info.Hits != 3 || !info.LastAccess.Equal(clock.Now()) {
		t.Fatalf("hits %d last access %v", info.Hits, info.LastAccess)
	}

	var listed [][]byte
	var after []byte
	pages := 0
	for {
		page, next, err := s.ListSegments(ctx, after, 10)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, info := range page {
			listed = append(listed, info.SegmentID)
		}
		if next == nil {
			break
		}
		after = next
	}
	sort.Slice(ids, func(i, j int) bool { return bytes.Compare(ids[i], ids[j]) < 0 })
	if pages != 3 || len(listed) != len(ids) {
		t.Fatalf("%d pages, %d segments listed; want 3 and %d", pages, len(listed), len(ids))
	}
	for i := range ids {
		if !bytes.Equal(ids[i], listed[i]) {
			t.Fatalf("listing order differs at %d", i)
		}
	}
	st := s.Stats()
	if st.TagBytes[pchc.TagBITS] == 0 || st.TagBytes[pchc.TagSMB] == 0 || st.TagBytes[pchc.TagBITS]+st.TagBytes[pchc.TagSMB] != st.Bytes {
		t.Fatalf("tag bytes %v, total %d", st.TagBytes, st.Bytes)
	}
	checkContents(t, s)
}

func TestDeleteAndFlush(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, testOptions(t, t.TempDir(), nil))
	sub := s.Subscribe()
	defer sub.Close()
	c := v1Content(1, 3*pccrc.BlockSize)
	ingestV1(t, s, c)
	r := newReplay(2, 4000)
	ingestReplay(t, s, r, "")
	if err := s.DeleteSegment(ctx, c.id); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteSegment(ctx, c.id); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second delete: %v, want ErrNotFound", err)
	}
	if _, err := s.ReadBlock(ctx, c.id, 0, make([]byte, MaxBlockBytes)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("read after delete: %v", err)
	}
	if _, err := s.PutBlock(ctx, c.id, 0, c.msgBlk(t, 0, pccrr.CryptoAES128, 0)); !errors.Is(err, ErrUnknownSegment) {
		t.Fatalf("put after delete: %v, want ErrUnknownSegment", err)
	}
	checkContents(t, s)
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Segments != 0 || st.Blocks != 0 || st.Bytes != 0 {
		t.Fatalf("stats after flush %+v", st)
	}
	checkContents(t, s)
	ingestReplay(t, s, r, "") // the store works after a flush
	checkContents(t, s)
	var kinds []EventKind
	for _, ev := range drain(sub) {
		kinds = append(kinds, ev.Kind)
	}
	want := []EventKind{SegmentAdded, SegmentAdded, SegmentDeleted, StoreFlushed, SegmentAdded}
	if len(kinds) != len(want) {
		t.Fatalf("events %v, want %v", kinds, want)
	}
	for i := range want {
		if kinds[i] != want[i] {
			t.Fatalf("events %v, want %v", kinds, want)
		}
	}
}

// A BATCHED_OFFER's descriptors go in together; a conflicting one is
// refused by name and the others are recorded.
func TestAddOfferBatch(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, testOptions(t, t.TempDir(), nil))
	a, b, c := newReplay(1, 1000), newReplay(2, 2000), newReplay(3, 3000)
	if err := s.AddOffer(ctx, SegmentOffer{SegmentID: a.id, Version: pccrc.V2, Size: 1000}); err != nil {
		t.Fatal(err)
	}
	err := s.AddOffer(ctx,
		SegmentOffer{SegmentID: a.id, Version: pccrc.V2, Size: 999}, // conflicts
		SegmentOffer{SegmentID: b.id, Version: pccrc.V2, Size: 2000, ContentTag: contentTag("WebIO")},
		SegmentOffer{SegmentID: c.id, Version: pccrc.V2, Size: 3000},
		SegmentOffer{SegmentID: c.id[:5], Version: pccrc.V2, Size: 3000}, // malformed
	)
	if !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), hexID(a.id)) {
		t.Fatalf("batch with a conflict: %v", err)
	}
	for _, r := range []replaySegment{b, c} {
		if info, err := s.Segment(ctx, r.id); err != nil || int(info.Size) != r.size {
			t.Fatalf("segment of the batch not recorded: %+v, %v", info, err)
		}
	}
	if st := s.Stats(); st.Segments != 3 {
		t.Fatalf("%d segments, want 3", st.Segments)
	}
}

// PutBlock returns once the block is written and queued, readable at
// once; Sync makes it durable, and Close commits whatever is still queued.
func TestSyncAndCloseCommitQueuedBlocks(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	opt := testOptions(t, dir, nil)
	s := openStore(t, opt)
	var rs []replaySegment
	for i := range 50 {
		r := newReplay(uint64(i), 30000)
		if err := s.AddOffer(ctx, SegmentOffer{SegmentID: r.id, Version: pccrc.V2, Size: 30000}); err != nil {
			t.Fatal(err)
		}
		rs = append(rs, r)
	}
	buf := make([]byte, MaxBlockBytes)
	for _, r := range rs[:25] {
		if _, err := s.PutBlock(ctx, r.id, 0, r.block); err != nil {
			t.Fatal(err)
		}
		// Readable as soon as PutBlock returns, committed or not.
		if blk, err := s.ReadBlock(ctx, r.id, 0, buf); err != nil || !bytes.Equal(blk.Ciphertext, r.block.Ciphertext) {
			t.Fatalf("read right after PutBlock: %v", err)
		}
		if res, err := s.PutBlock(ctx, r.id, 0, r.block); err != nil || res.Stored {
			t.Fatalf("second put right after the first: %+v, %v", res, err)
		}
	}
	mustSync(t, s)
	for _, r := range rs[:25] {
		if has, _ := s.HasSegment(ctx, r.id); !has {
			t.Fatal("a block put before Sync is not visible after it")
		}
	}
	for _, r := range rs[25:] {
		if _, err := s.PutBlock(ctx, r.id, 0, r.block); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Sync(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("Sync after Close: %v", err)
	}
	if _, err := s.PutBlock(ctx, rs[0].id, 0, rs[0].block); !errors.Is(err, ErrClosed) {
		t.Fatalf("PutBlock after Close: %v", err)
	}
	s = openStore(t, opt)
	if _, blocks, _ := checkContents(t, s); blocks != 50 {
		t.Fatalf("%d blocks after Close and reopen, want 50", blocks)
	}
}
