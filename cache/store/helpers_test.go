package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"log/slog"
	"math/rand/v2"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/outpost-appliance/outpost/peerdist/pccrc"
	"github.com/outpost-appliance/outpost/peerdist/pccrr"
	"github.com/outpost-appliance/outpost/peerdist/pchc"
)

// testClock is a clock tests move by hand.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *testClock {
	return &testClock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// testLogger logs to the test at Warn and above (Debug with -v and
// STORE_DEBUG=1).
func testLogger(t testing.TB) *slog.Logger {
	level := slog.LevelWarn
	if os.Getenv("STORE_DEBUG") != "" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: level}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

// testOptions are the small profile shrunk so that tests exercise file
// rotation, flushes and GC with megabytes instead of gigabytes, and with
// background work left to the test (Maintain) unless it says otherwise.
func testOptions(t testing.TB, dir string, clock *testClock) Options {
	opt := Options{
		Dir:                 dir,
		Profile:             ProfileSmall,
		Logger:              testLogger(t),
		AccessFlushInterval: time.Hour,
		MaintenanceInterval: time.Hour,
		GCInterval:          time.Hour,
		PackSize:            1 << 20,
		Tune:                smallFiles,
	}
	if clock != nil {
		opt.Now = clock.Now
	}
	return opt
}

func smallFiles(o *badger.Options) {
	o.ValueLogFileSize = 2 << 20
	o.MemTableSize = 2 << 20
}

func openStore(t testing.TB, opt Options) *Store {
	t.Helper()
	s, err := Open(context.Background(), opt)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// content is a V1 segment with its data, as a content server would hash it.
type content struct {
	plain []byte
	seg   pccrc.Segment
	id    []byte
}

// serverKey is Ks for the tests' made-up content server.
var serverKey = sha256.Sum256([]byte("test server secret"))

// v1Content makes a V1 SHA-256 segment of size bytes from seed.
func v1Content(seed uint64, size int) content {
	plain := pseudoRandom(seed, size)
	algo := pccrc.SHA256
	var seg pccrc.Segment
	seg.Size = uint32(size)
	h := algo.New()
	for i := range pccrc.BlockCount(seg.Size) {
		off, n := pccrc.BlockSpan(seg.Size, i)
		bh := algo.Sum(plain[off : off+n])
		seg.BlockHashes = append(seg.BlockHashes, bh)
		h.Write(bh)
	}
	seg.HashOfData = h.Sum(nil)
	seg.Secret = algo.SegmentSecret(serverKey[:], seg.HashOfData)
	return content{plain: plain, seg: seg, id: algo.SegmentID(seg.Secret, seg.HashOfData)}
}

// v2Content makes a V2 segment (up to 128 KiB) from seed.
func v2Content(seed uint64, size int) content {
	plain := pseudoRandom(seed, size)
	algo := pccrc.TruncatedSHA512
	seg := pccrc.Segment{Size: uint32(size), HashOfData: algo.Sum(plain)}
	seg.Secret = algo.SegmentSecret(serverKey[:32], seg.HashOfData)
	return content{plain: plain, seg: seg, id: algo.SegmentID(seg.Secret, seg.HashOfData)}
}

func (c content) block(index int) []byte {
	if len(c.seg.BlockHashes) == 0 {
		return c.plain
	}
	off, n := pccrc.BlockSpan(c.seg.Size, index)
	return c.plain[off : off+n]
}

func (c content) blocks() int {
	if len(c.seg.BlockHashes) == 0 {
		return 1
	}
	return len(c.seg.BlockHashes)
}

// msgBlk is what an offering Windows client sends for a block: encrypted
// with the header's key length from Kp (iPXE's reading).
func (c content) msgBlk(t testing.TB, index int, algo pccrr.CryptoAlgo, seed uint64) Block {
	t.Helper()
	iv := pseudoRandom(seed^0x5eed, 16)
	ct, err := pccrr.EncryptBlock(c.seg.Secret, algo, iv, c.block(index))
	if err != nil {
		t.Fatal(err)
	}
	return Block{Crypto: algo, IV: iv, Ciphertext: ct}
}

func pseudoRandom(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n+8)
	for i := 0; i < n; i += 8 {
		binary.LittleEndian.PutUint64(b[i:], r.Uint64())
	}
	return b[:n]
}

// decrypt reads a served block the way a client does (key from the
// header's length) and returns the plaintext.
func decryptServed(t testing.TB, kp []byte, blk Block, plainLen int) []byte {
	t.Helper()
	plain, err := pccrr.DecryptBlock(kp, blk.Crypto, blk.IV, blk.Ciphertext, plainLen, nil)
	if err != nil {
		t.Fatalf("decrypt served block: %v", err)
	}
	return plain
}

func mustAddInfo(t testing.TB, s *Store, c content, tag string) {
	t.Helper()
	version, algo := pccrc.V1, pccrc.SHA256
	if len(c.seg.BlockHashes) == 0 {
		version, algo = pccrc.V2, pccrc.TruncatedSHA512
	}
	id, err := s.AddSegmentInfo(context.Background(), version, algo, c.seg, contentTag(tag))
	if err != nil {
		t.Fatalf("AddSegmentInfo: %v", err)
	}
	if !bytes.Equal(id, c.id) {
		t.Fatalf("AddSegmentInfo returned ID %x, want %x", id, c.id)
	}
}

// ingestV1 declares a V1 segment and puts all its blocks as a client
// would send them.
func ingestV1(t testing.TB, s *Store, c content) {
	t.Helper()
	mustAddInfo(t, s, c, "WinINet")
	for i := range c.blocks() {
		if _, err := s.PutBlock(context.Background(), c.id, uint32(i), c.msgBlk(t, i, pccrr.CryptoAES128, uint64(i))); err != nil {
			t.Fatalf("PutBlock %d: %v", i, err)
		}
	}
	mustSync(t, s)
}

func mustSync(t testing.TB, s *Store) {
	t.Helper()
	if err := s.Sync(context.Background()); err != nil {
		t.Fatalf("Sync: %v", err)
	}
}

// replaySegment is a V2 segment offered without hashes: an ID, a size and
// the MSG_BLK contents to keep byte for byte.
type replaySegment struct {
	id    []byte
	size  int
	block Block
}

func newReplay(seed uint64, size int) replaySegment {
	id := sha256.Sum256(binary.LittleEndian.AppendUint64(nil, seed))
	ctLen := roundUp16(size)
	if seed%2 == 0 && size%16 == 0 {
		ctLen += 16
	}
	return replaySegment{
		id:    id[:],
		size:  size,
		block: Block{Crypto: pccrr.CryptoAES128, IV: pseudoRandom(seed+1, 16), Ciphertext: pseudoRandom(seed+2, ctLen)},
	}
}

func ingestReplay(t testing.TB, s *Store, r replaySegment, tag string) {
	t.Helper()
	ctx := context.Background()
	if err := s.AddOffer(ctx, SegmentOffer{SegmentID: r.id, Version: pccrc.V2, Size: uint32(r.size), ContentTag: contentTag(tag)}); err != nil {
		t.Fatalf("AddOffer: %v", err)
	}
	if _, err := s.PutBlock(ctx, r.id, 0, r.block); err != nil {
		t.Fatalf("PutBlock: %v", err)
	}
	mustSync(t, s)
}

// checkContents reads back everything the store lists and checks that
// the accounting matches: the independent recount of tests.
func checkContents(t testing.TB, s *Store) (segments, blocks, byteCount int64) {
	t.Helper()
	ctx := context.Background()
	mustSync(t, s)
	buf := make([]byte, MaxBlockBytes)
	var after []byte
	for {
		page, next, err := s.ListSegments(ctx, after, 50)
		if err != nil {
			t.Fatalf("ListSegments: %v", err)
		}
		for _, info := range page {
			segments++
			var segBytes int64
			for i := range info.BlockCount {
				blk, err := s.ReadBlock(ctx, info.SegmentID, uint32(i), buf)
				switch {
				case info.Held.Has(uint32(i)) && err != nil:
					t.Errorf("segment %x block %d is held but ReadBlock says %v", info.SegmentID, i, err)
				case !info.Held.Has(uint32(i)) && !errors.Is(err, ErrNotFound):
					t.Errorf("segment %x block %d is not held but ReadBlock says %v", info.SegmentID, i, err)
				case err == nil:
					blocks++
					segBytes += int64(len(blk.IV) + len(blk.Ciphertext))
				}
			}
			if info.HashesKnown {
				segBytes += int64(hashesLen(info.HashAlgo, info.Version, info.Size))
			}
			if segBytes != info.Bytes {
				t.Errorf("segment %x: Bytes %d, its blocks and hashes add up to %d", info.SegmentID, info.Bytes, segBytes)
			}
			byteCount += segBytes
		}
		if next == nil {
			break
		}
		after = next
	}
	st := s.Stats()
	if st.Segments != segments || st.Blocks != blocks || st.Bytes != byteCount {
		t.Errorf("Stats say %d segments, %d blocks, %d bytes; contents are %d, %d, %d",
			st.Segments, st.Blocks, st.Bytes, segments, blocks, byteCount)
	}
	return segments, blocks, byteCount
}

// drain returns the events queued for sub without waiting.
func drain(sub *Subscription) []Event {
	var out []Event
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		ev, err := sub.Next(ctx)
		cancel()
		if err != nil {
			return out
		}
		out = append(out, ev)
	}
}

// heapAlloc is the bytes allocated so far by the process.
func heapAlloc() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.TotalAlloc
}

// contentTag is the 16-byte tag a Windows component sends for a
// pchc.TagName name (nil for "").
func contentTag(name string) []byte {
	if name == "" {
		return nil
	}
	tag := pchc.MakeContentTag(name)
	return tag[:]
}
