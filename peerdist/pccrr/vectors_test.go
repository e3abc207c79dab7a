package pccrr

import (
	"bytes"
	"crypto/sha256"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/outpost-appliance/outpost/peerdist/vectors"
)

// goldenWant is what the vector READMEs say each pccrr_* message contains.
// MSG_BLK vectors with a real ciphertext are checked by length and SHA-256
// (from summary.json) instead of by content.
func goldenWant(k known) map[string]Message {
	reqPD, reqMS := requestID(1), requestID(0x11)
	v1, v2 := ProtVer{Major: 1}, ProtVer{Major: 2}
	ages := mustBlob(SegmentAges{Units: AgeCentiseconds, Ages: []SegmentAge{{0, 60000}, {1, 10000}}})
	return map[string]Message{
		"peerdist/pccrr_nego_req_1.0-2.0":        &NegoReq{Crypto: CryptoAES128, MinVersion: v1, MaxVersion: v2},
		"peerdist/pccrr_nego_resp_1.0-2.0":       &NegoResp{Crypto: CryptoNone, MinVersion: v1, MaxVersion: v2},
		"peerdist/pccrr_getblklist_v1seg_all":    &GetBlkList{Crypto: CryptoAES128, SegmentID: k.v1Seg, Ranges: []BlockRange{{0, 2}}},
		"peerdist/pccrr_blklist_v1seg_all":       &BlkList{Crypto: CryptoAES128, SegmentID: k.v1Seg, Ranges: []BlockRange{{0, 2}}},
		"peerdist/pccrr_blklist_v1seg_none":      &BlkList{Crypto: CryptoAES128, SegmentID: k.v1Seg},
		"peerdist/pccrr_getblks_v1seg_blk0":      &GetBlks{Crypto: CryptoAES128, SegmentID: k.v1Seg, Ranges: []BlockRange{{0, 1}}},
		"peerdist/pccrr_blk_notfound_v1seg_blk0": &Blk{Crypto: CryptoNone, SegmentID: k.v1Seg},
		"peerdist/pccrr_getblks_v2segA_blk0":     &GetBlks{Crypto: CryptoAES128, SegmentID: k.v2SegA, Ranges: []BlockRange{{0, 1}}},
		"peerdist/pccrr_getseglist_v2_both": &GetSegList{Crypto: CryptoAES128, RequestID: reqPD,
			SegmentIDs: [][]byte{k.v2SegA, k.v2SegB}},
		"peerdist/pccrr_seglist_v2_both": &SegList{Crypto: CryptoNone, RequestID: reqPD,
			Ranges: []SegmentRange{{0, 2}}, ExtensibleBlob: ages},
		"peerdist/pccrr_seglist_v2_none": &SegList{Crypto: CryptoNone, RequestID: reqPD},

		"mstest/pccrr_nego_req_v1":          &NegoReq{Crypto: CryptoAES128, MinVersion: v1, MaxVersion: v1},
		"mstest/pccrr_nego_resp_1.0-2.0":    &NegoResp{Crypto: CryptoAES128, MinVersion: v1, MaxVersion: v2},
		"mstest/pccrr_getblklist_seg0_all":  &GetBlkList{Crypto: CryptoAES128, SegmentID: k.mbSeg, Ranges: []BlockRange{{0, 2}}},
		"mstest/pccrr_blklist_empty":        &BlkList{Crypto: CryptoAES128, SegmentID: k.mbSeg},
		"mstest/pccrr_blklist_full":         &BlkList{Crypto: CryptoAES128, SegmentID: k.mbSeg, Ranges: []BlockRange{{0, 2}}},
		"mstest/pccrr_getblks_seg0_blk1":    &GetBlks{Crypto: CryptoAES128, SegmentID: k.mbSeg, Ranges: []BlockRange{{1, 1}}},
		"mstest/pccrr_blk_not_found":        &Blk{Crypto: CryptoAES128, SegmentID: k.mbSeg, BlockIndex: 1},
		"mstest/pccrr_getseglist_v2_noblob": &GetSegList{Crypto: CryptoAES128, RequestID: reqMS, SegmentIDs: [][]byte{k.mbV2Seg}},
		"mstest/pccrr_getseglist_v2_blob": &GetSegList{Crypto: CryptoAES128, RequestID: reqMS, SegmentIDs: [][]byte{k.mbV2Seg},
			ExtensibleBlob: mustBlob(SegmentAges{Units: AgeCentiseconds, Ages: []SegmentAge{{0, 1}}})},
		"mstest/pccrr_seglist_hit":  &SegList{Crypto: CryptoAES128, RequestID: reqMS, Ranges: []SegmentRange{{0, 1}}},
		"mstest/pccrr_seglist_miss": &SegList{Crypto: CryptoAES128, RequestID: reqMS},

		// Block and IV are checked separately (see checkCiphertextBlk).
		"mstest/pccrr_blk_seg0_blk1_key32_aes256": &Blk{Crypto: CryptoAES128, SegmentID: k.mbSeg, BlockIndex: 1},
		"mstest/pccrr_blk_seg0_blk1_key16_aes128": &Blk{Crypto: CryptoAES128, SegmentID: k.mbSeg, BlockIndex: 1},
	}
}

func mustBlob(a SegmentAges) []byte {
	b, err := a.Marshal()
	if err != nil {
		panic(err)
	}
	return b
}

// TestGoldenMessages decodes every pccrr_* message of both golden tables,
// checks its fields against the READMEs and re-encodes it byte for byte.
func TestGoldenMessages(t *testing.T) {
	k := loadKnown(t)
	want := goldenWant(k)
	seen := map[string]bool{}
	for _, g := range goldenPCCRR(t) {
		t.Run(g.Name, func(t *testing.T) {
			w, ok := want[g.Name]
			if !ok {
				t.Fatalf("no expectation for vector %s: add it to goldenWant", g.Name)
			}
			seen[g.Name] = true
			checkGolden(t, k, g.Name, g.Data, w)
		})
	}
	for name := range want {
		if !seen[name] {
			t.Errorf("expected vector %s is not in the golden tables", name)
		}
	}
}

func checkGolden(t *testing.T, k known, name string, data []byte, want Message) {
	t.Helper()
	got, err := parseAny(data, want.Type().IsResponse())
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	if blk, ok := got.(*Blk); ok && len(blk.Block) > 0 {
		checkCiphertextBlk(t, k, name, blk)
		cp := *blk
		cp.Block, cp.IV = nil, nil
		got = &cp
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("decoded\n got %+v\nwant %+v", got, want)
	}
	again, err := mustParse(t, data, want.Type().IsResponse()).Marshal()
	if err != nil {
		t.Fatalf("re-encode: %v", err)
	}
	if !bytes.Equal(again, data) {
		t.Errorf("re-encoded bytes differ\n got %x\nwant %x", again, data)
	}
}

func mustParse(t testing.TB, data []byte, response bool) Message {
	t.Helper()
	m, err := parseAny(data, response)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	return m
}

// checkCiphertextBlk checks the two real MSG_BLK vectors: 15 376 bytes of
// ciphertext (15 360 plaintext + PKCS#7) with the SHA-256 summary.json
// gives, IV 00..0f.
func checkCiphertextBlk(t *testing.T, k known, name string, blk *Blk) {
	t.Helper()
	short := name[strings.IndexByte(name, '/')+1:]
	sum, ok := k.mbCiphertextSHA256[short]
	if !ok {
		t.Fatalf("unexpected ciphertext MSG_BLK vector %s", name)
	}
	if want := k.mbLastBlockLen + 16; len(blk.Block) != want {
		t.Errorf("block of %d bytes, want %d", len(blk.Block), want)
	}
	if got := sha256.Sum256(blk.Block); !bytes.Equal(got[:], sum) {
		t.Errorf("ciphertext SHA-256 %x, want %x", got, sum)
	}
	if iv := requestID(1); !bytes.Equal(blk.IV, iv[:]) {
		t.Errorf("IV %x, want 000102..0f", blk.IV)
	}
}

// TestDerivedBinFiles decodes every peerdist-vectors/derived/pccrr_*.bin,
// which must equal its golden_messages.tsv row, and re-encodes it.
func TestDerivedBinFiles(t *testing.T) {
	k := loadKnown(t)
	want := goldenWant(k)
	table := vectors.GoldenTable(t, "peerdist-vectors", "derived", "golden_messages.tsv")
	files, err := filepath.Glob(vectors.Path(t, "peerdist-vectors", "derived", "pccrr_*.bin"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no pccrr_*.bin vectors (%v)", err)
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".bin")
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(data, vectors.Lookup(t, table, name)) {
				t.Fatalf("%s.bin differs from its golden_messages.tsv row", name)
			}
			w, ok := want["peerdist/"+name]
			if !ok {
				t.Fatalf("no expectation for %s", name)
			}
			checkGolden(t, k, name, data, w)
		})
	}
}

// TestGoldenSeglistAges decodes the segment ages the README describes:
// units 3 (hundredths of a second), segment 0 aged 60 000 (10 min),
// segment 1 aged 10 000 (100 s).
func TestGoldenSeglistAges(t *testing.T) {
	table := vectors.GoldenTable(t, "peerdist-vectors", "derived", "golden_messages.tsv")
	m := mustParse(t, vectors.Lookup(t, table, "pccrr_seglist_v2_both"), true).(*SegList)
	ages, err := ParseSegmentAges(m.ExtensibleBlob)
	if err != nil {
		t.Fatal(err)
	}
	want := SegmentAges{Units: AgeCentiseconds, Ages: []SegmentAge{{0, 60000}, {1, 10000}}}
	if !reflect.DeepEqual(ages, want) {
		t.Fatalf("ages %+v, want %+v", ages, want)
	}
	if d := ages.Duration(0); d.Seconds() != 600 {
		t.Errorf("segment 0 age %v, want 10m", d)
	}
	if d := ages.Duration(1); d.Seconds() != 100 {
		t.Errorf("segment 1 age %v, want 100s", d)
	}
}

// TestServerRepliesMatchVectors builds the replies to the golden requests
// with the server helpers and compares them with the golden replies.
func TestServerRepliesMatchVectors(t *testing.T) {
	pd := vectors.GoldenTable(t, "peerdist-vectors", "derived", "golden_messages.tsv")
	ms := vectors.GoldenTable(t, "mstest-vectors", "derived", "golden_messages.txt")
	var both BlockSet
	both.SetRange(BlockRange{0, 2})
	getBlkList := mustParse(t, vectors.Lookup(t, pd, "pccrr_getblklist_v1seg_all"), false).(*GetBlkList)
	getBlks := mustParse(t, vectors.Lookup(t, pd, "pccrr_getblks_v1seg_blk0"), false).(*GetBlks)
	msGetBlkList := mustParse(t, vectors.Lookup(t, ms, "pccrr_getblklist_seg0_all"), false).(*GetBlkList)
	getSegList := mustParse(t, vectors.Lookup(t, pd, "pccrr_getseglist_v2_both"), false).(*GetSegList)
	msGetSegList := mustParse(t, vectors.Lookup(t, ms, "pccrr_getseglist_v2_noblob"), false).(*GetSegList)
	ages := mustBlob(SegmentAges{Units: AgeCentiseconds, Ages: []SegmentAge{{0, 60000}, {1, 10000}}})
	segHit := NewSegList(getSegList, func([]byte) bool { return true })
	segHit.Crypto, segHit.ExtensibleBlob = CryptoNone, ages
	segMiss := NotFoundSegList(getSegList)
	segMiss.Crypto = CryptoNone

	tests := []struct {
		name  string
		reply Message
		want  []byte
	}{
		{"blklist all", NewBlkList(getBlkList, &both), vectors.Lookup(t, pd, "pccrr_blklist_v1seg_all")},
		{"blklist unknown segment", NewBlkList(getBlkList, nil), vectors.Lookup(t, pd, "pccrr_blklist_v1seg_none")},
		{"blklist not found", NotFoundBlkList(getBlkList), vectors.Lookup(t, pd, "pccrr_blklist_v1seg_none")},
		{"blk not found", NotFoundBlk(getBlks), vectors.Lookup(t, pd, "pccrr_blk_notfound_v1seg_blk0")},
		{"nego resp", NewNegoResp(), vectors.Lookup(t, pd, "pccrr_nego_resp_1.0-2.0")},
		{"nego req", NewNegoReq(), vectors.Lookup(t, pd, "pccrr_nego_req_1.0-2.0")},
		{"seglist hit", segHit, vectors.Lookup(t, pd, "pccrr_seglist_v2_both")},
		{"seglist miss", segMiss, vectors.Lookup(t, pd, "pccrr_seglist_v2_none")},
		{"mstest blklist full", NewBlkList(msGetBlkList, &both), vectors.Lookup(t, ms, "pccrr_blklist_full")},
		{"mstest blklist empty", NewBlkList(msGetBlkList, &BlockSet{}), vectors.Lookup(t, ms, "pccrr_blklist_empty")},
		{"mstest seglist hit", NewSegList(msGetSegList, func([]byte) bool { return true }), vectors.Lookup(t, ms, "pccrr_seglist_hit")},
		{"mstest seglist miss", NewSegList(msGetSegList, func([]byte) bool { return false }), vectors.Lookup(t, ms, "pccrr_seglist_miss")},
	}
	for _, tt := range tests {
		got, err := tt.reply.Marshal()
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if !bytes.Equal(got, tt.want) {
			t.Errorf("%s:\n got %x\nwant %x", tt.name, got, tt.want)
		}
	}
}
