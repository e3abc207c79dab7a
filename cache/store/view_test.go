package store

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/outpost-appliance/outpost/peerdist/pccrc"
	"github.com/outpost-appliance/outpost/peerdist/pccrr"
)

// viewResult is what a ViewBlock's send saw, copied out of the view.
type viewResult struct {
	blk    OpenedBlock // as returned
	crypto pccrr.CryptoAlgo
	iv, ct []byte
	held   pccrr.BlockSet
	tag    string
	sent   int  // how many times send was called
	inBuf  bool // the bytes sliced buf (read), not a mapping
	err    error
}

func view(s *Store, id []byte, index uint32, buf []byte) viewResult {
	var r viewResult
	r.blk, r.err = s.ViewBlock(context.Background(), id, index, buf, func(b OpenedBlock) error {
		r.sent++
		r.crypto, r.held, r.tag = b.Crypto, b.Held, b.Tag
		r.iv = append([]byte(nil), b.IV...)
		r.ct = append([]byte(nil), b.Ciphertext...)
		r.inBuf = inside(b.IV, buf) && inside(b.Ciphertext, buf)
		return nil
	})
	return r
}

// inside reports whether b lies within buf's memory.
func inside(b, buf []byte) bool {
	if len(b) == 0 || len(buf) == 0 {
		return false
	}
	p, lo := uintptr(unsafe.Pointer(&b[0])), uintptr(unsafe.Pointer(&buf[0]))
	return p >= lo && p+uintptr(len(b)) <= lo+uintptr(len(buf))
}

// sameError reports whether two errors are the same kind of answer.
func sameError(a, b error) bool {
	for _, target := range []error{ErrNotFound, ErrCorrupt, ErrShortBuffer, ErrClosed} {
		if errors.Is(a, target) != errors.Is(b, target) {
			return false
		}
	}
	return (a == nil) == (b == nil)
}

// laneReplay is a replay segment whose blocks go to the given lane (the
// lane is picked by the ID's last byte), so that tests can put several
// segments in one pack.
func laneReplay(seed uint64, size int, lane byte) replaySegment {
	r := newReplay(seed, size)
	r.id[len(r.id)-1] = lane
	return r
}

// holdWriter occupies the writer until the returned function is called:
// blocks put meanwhile stay pending (written, not committed).
func holdWriter(t *testing.T, s *Store) (release func()) {
	t.Helper()
	held, done := make(chan struct{}), make(chan struct{})
	go s.do(context.Background(), func() error { close(held); <-done; return nil })
	<-held
	var once sync.Once
	release = func() { once.Do(func() { close(done) }) }
	t.Cleanup(release)
	return release
}

// packOf is the pack a block's bytes are in.
func packOf(t *testing.T, s *Store, id []byte, index uint32) uint32 {
	t.Helper()
	if err := s.readLock(); err != nil {
		t.Fatal(err)
	}
	defer s.mu.RUnlock()
	settled := s.pending.settled.Load()
	txn := s.db.NewTransaction(false)
	defer txn.Discard()
	e, err := s.entry(txn, settled, id, index)
	if err != nil {
		t.Fatal(err)
	}
	return e.pack
}

func packPath(dir string, id uint32) string { return filepath.Join(dir, "packs", packName(id)) }

// ViewBlock answers what OpenBlock answers — bytes, held set, tag,
// errors — for V1, V2 and replayed blocks, committed or pending, and for
// misses; mapped, or read into buf where packs are not mapped (as on a
// 32-bit platform).
func TestViewBlockMatchesOpenBlock(t *testing.T) {
	for _, mode := range []struct {
		name   string
		mapped bool
	}{{"mapped", true}, {"read", false}} {
		t.Run(mode.name, func(t *testing.T) {
			ctx := context.Background()
			s := openStore(t, testOptions(t, t.TempDir(), nil))
			if !mode.mapped {
				s.packs.maxMaps = 0
			} else if !mapReads {
				t.Skip("packs are not mapped on this platform")
			}
			v1 := v1Content(21, 3*pccrc.BlockSize+100)
			ingestV1(t, s, v1)
			v2 := v2Content(22, 100000)
			mustAddInfo(t, s, v2, "BITS-4.0")
			if _, err := s.PutBlock(ctx, v2.id, 0, v2.msgBlk(t, 0, pccrr.CryptoAES256, 1)); err != nil {
				t.Fatal(err)
			}
			replay := newReplay(23, 5000)
			ingestReplay(t, s, replay, "WebIO")

			// Pending blocks: put while the writer is held, so they are
			// written but not committed when viewed.
			pendingReplay := newReplay(24, 70000)
			if err := s.AddOffer(ctx, SegmentOffer{SegmentID: pendingReplay.id, Version: pccrc.V2, Size: uint32(pendingReplay.size)}); err != nil {
				t.Fatal(err)
			}
			pendingV1 := v1Content(25, 2*pccrc.BlockSize)
			mustAddInfo(t, s, pendingV1, "WinINet")
			release := holdWriter(t, s)
			if _, err := s.PutBlock(ctx, pendingReplay.id, 0, pendingReplay.block); err != nil {
				t.Fatal(err)
			}
			if _, err := s.PutBlock(ctx, pendingV1.id, 1, pendingV1.msgBlk(t, 1, pccrr.CryptoAES192, 2)); err != nil {
				t.Fatal(err)
			}
			for _, p := range []struct {
				id    []byte
				index uint32
			}{{pendingReplay.id, 0}, {pendingV1.id, 1}} {
				if _, ok := s.pending.get(p.id, p.index); !ok {
					t.Fatalf("block %x/%d is not pending", p.id[:4], p.index)
				}
			}

			for _, tc := range []struct {
				name  string
				id    []byte
				index uint32
				buf   int
				found bool
			}{
				{"V1 block 0", v1.id, 0, MaxBlockBytes, true},
				{"V1 block 3 (short)", v1.id, 3, MaxBlockBytes, true},
				{"V2 block", v2.id, 0, MaxBlockBytes, true},
				{"replayed block", replay.id, 0, MaxBlockBytes, true},
				{"pending replayed block", pendingReplay.id, 0, MaxBlockBytes, true},
				{"pending V1 block", pendingV1.id, 1, MaxBlockBytes, true},
				{"miss in a pending segment", pendingV1.id, 0, MaxBlockBytes, false},
				{"index past the segment", v1.id, 4, MaxBlockBytes, false},
				{"index past any segment", v1.id, pccrr.MaxBlocks, MaxBlockBytes, false},
				{"unknown segment", bytes.Repeat([]byte{7}, 32), 0, MaxBlockBytes, false},
				{"malformed ID", []byte{1, 2, 3}, 0, MaxBlockBytes, false},
				{"short buffer", v1.id, 0, 100, false},
			} {
				t.Run(tc.name, func(t *testing.T) {
					want, wantErr := s.OpenBlock(ctx, tc.id, tc.index, make([]byte, tc.buf))
					got := view(s, tc.id, tc.index, make([]byte, tc.buf))
					if !sameError(got.err, wantErr) {
						t.Fatalf("ViewBlock: %v; OpenBlock: %v", got.err, wantErr)
					}
					if got.blk.Held != want.Held || got.blk.Tag != want.Tag {
						t.Fatalf("returned held %v tag %q, OpenBlock's %v %q", got.blk.Held.Ranges(), got.blk.Tag, want.Held.Ranges(), want.Tag)
					}
					if got.blk.IV != nil || got.blk.Ciphertext != nil {
						t.Fatal("the returned block still slices the view")
					}
					if !tc.found {
						if got.sent != 0 || wantErr == nil {
							t.Fatalf("send called %d times for a miss (OpenBlock: %v)", got.sent, wantErr)
						}
						return
					}
					if got.sent != 1 {
						t.Fatalf("send called %d times", got.sent)
					}
					if got.crypto != want.Crypto || got.blk.Crypto != want.Crypto || !bytes.Equal(got.iv, want.IV) || !bytes.Equal(got.ct, want.Ciphertext) {
						t.Fatal("ViewBlock and OpenBlock give different blocks")
					}
					if got.held != want.Held || got.tag != want.Tag {
						t.Fatalf("send saw held %v tag %q, OpenBlock %v %q", got.held.Ranges(), got.tag, want.Held.Ranges(), want.Tag)
					}
					if got.inBuf == mode.mapped {
						t.Fatalf("bytes in buf: %v, with packs mapped: %v", got.inBuf, mode.mapped)
					}
				})
			}
			if want := map[bool]int64{true: 1, false: 0}[mode.mapped]; s.packs.maps.Load() < want {
				t.Fatalf("%d live mappings", s.packs.maps.Load())
			}

			// send's error comes back as is, and the block stays.
			errSend := errors.New("connection reset")
			_, err := s.ViewBlock(ctx, replay.id, 0, make([]byte, MaxBlockBytes), func(OpenedBlock) error { return errSend })
			if err != errSend {
				t.Fatalf("ViewBlock returned %v, want send's error", err)
			}
			release()
			mustSync(t, s)
			if got := view(s, pendingReplay.id, 0, make([]byte, MaxBlockBytes)); got.err != nil || !bytes.Equal(got.ct, pendingReplay.block.Ciphertext) {
				t.Fatalf("the pending block once committed: %v", got.err)
			}
			checkContents(t, s)
		})
	}
}

// A block whose stored bytes fail their check is never sent: ViewBlock
// reports it as OpenBlock does and the block is dropped — whether the
// bytes rotted while the store was closed, changed under a live mapping
// before their first view, or after it once the check's trust expired
// (checked.go), or cannot be read at all (a pack cut short under the
// mapping: the read faults).
func TestViewBlockCorrupt(t *testing.T) {
	if !mapReads {
		t.Skip("packs are not mapped on this platform")
	}
	for _, tc := range []struct {
		name      string
		viewFirst bool // view (and so check) the block before the damage
		damage    func(t *testing.T, s *Store, clock *testClock, dir string, r replaySegment) *Store
	}{
		{"flipped while closed", true, func(t *testing.T, s *Store, clock *testClock, dir string, r replaySegment) *Store {
			s.Close()
			flipInPacks(t, dir, r.block.Ciphertext[:64])
			return openStore(t, s.opt)
		}},
		{"flipped under the mapping", false, func(t *testing.T, s *Store, clock *testClock, dir string, r replaySegment) *Store {
			flipInPacks(t, dir, r.block.Ciphertext[:64])
			return s
		}},
		{"flipped after its check, once the check expires", true, func(t *testing.T, s *Store, clock *testClock, dir string, r replaySegment) *Store {
			flipInPacks(t, dir, r.block.Ciphertext[:64])
			clock.Advance(checkTrust)
			return s
		}},
		{"cut short under the mapping", true, func(t *testing.T, s *Store, clock *testClock, dir string, r replaySegment) *Store {
			if err := os.Truncate(packPath(dir, packOf(t, s, r.id, 0)), 0); err != nil {
				t.Fatal(err)
			}
			// Within the check's trust the fault would come in send
			// (TestViewBlockFaultInSend); here the check itself faults.
			clock.Advance(checkTrust)
			return s
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			clock := newClock()
			s := openStore(t, testOptions(t, dir, clock))
			r := newReplay(31, 60000)
			ingestReplay(t, s, r, "")
			if tc.viewFirst {
				if got := view(s, r.id, 0, make([]byte, MaxBlockBytes)); got.err != nil || got.inBuf {
					t.Fatalf("first view: %v (read into buf: %v)", got.err, got.inBuf)
				}
			}
			s = tc.damage(t, s, clock, dir, r)
			got := view(s, r.id, 0, make([]byte, MaxBlockBytes))
			if !errors.Is(got.err, ErrCorrupt) || !errors.Is(got.err, ErrNotFound) {
				t.Fatalf("view of a damaged block: %v, want ErrCorrupt (and ErrNotFound)", got.err)
			}
			if got.sent != 0 {
				t.Fatal("a damaged block was sent")
			}
			waitDropped(t, s, r.id)
		})
	}
}

// waitDropped waits for a corrupt block to be dropped.
func waitDropped(t *testing.T, s *Store, id []byte) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for s.Stats().CorruptBlocks < 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := s.Stats().CorruptBlocks; n != 1 {
		t.Fatalf("%d corrupt blocks dropped, want 1", n)
	}
	if _, err := s.OpenBlock(context.Background(), id, 0, make([]byte, MaxBlockBytes)); !errors.Is(err, ErrNotFound) || errors.Is(err, ErrCorrupt) {
		t.Fatalf("the dropped block: %v, want ErrNotFound", err)
	}
}

// A page that faults while send reads it (the pack cut short during the
// send) is a read error of the block, not a crash.
func TestViewBlockFaultInSend(t *testing.T) {
	if !mapReads {
		t.Skip("packs are not mapped on this platform")
	}
	dir := t.TempDir()
	s := openStore(t, testOptions(t, dir, nil))
	r := newReplay(33, 60000)
	ingestReplay(t, s, r, "")
	path := packPath(dir, packOf(t, s, r.id, 0))
	sink := make([]byte, MaxBlockBytes)
	_, err := s.ViewBlock(context.Background(), r.id, 0, make([]byte, MaxBlockBytes), func(b OpenedBlock) error {
		if err := os.Truncate(path, 0); err != nil {
			t.Error(err)
		}
		copy(sink, b.Ciphertext) // faults
		return nil
	})
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("ViewBlock with a fault in send: %v, want ErrCorrupt", err)
	}
	waitDropped(t, s, r.id)
}

// A view in flight keeps its bytes while its pack is removed (segment
// deleted or evicted, pack compacted away, store flushed) or the store
// closes, without holding up any of them; the mapping goes when send
// returns.
func TestViewBlockInFlight(t *testing.T) {
	if !mapReads {
		t.Skip("packs are not mapped on this platform")
	}
	for _, tc := range []struct {
		name     string
		op       func(ctx context.Context, s *Store, clock *testClock, r, other replaySegment) error
		removed  bool // the pack file goes
		survives bool // the block is still held afterwards
	}{
		{"deleted", func(ctx context.Context, s *Store, _ *testClock, r, other replaySegment) error {
			if err := s.DeleteSegment(ctx, other.id); err != nil {
				return err
			}
			return s.DeleteSegment(ctx, r.id)
		}, true, false},
		{"evicted", func(ctx context.Context, s *Store, clock *testClock, _, _ replaySegment) error {
			clock.Advance(48 * time.Hour)
			return s.Maintain(ctx)
		}, true, false},
		{"compacted", func(ctx context.Context, s *Store, _ *testClock, _, other replaySegment) error {
			if err := s.DeleteSegment(ctx, other.id); err != nil {
				return err
			}
			s.collectGarbage(ctx, true)
			return nil
		}, true, true},
		{"flushed", func(ctx context.Context, s *Store, _ *testClock, _, _ replaySegment) error {
			return s.Flush(ctx)
		}, true, false},
		{"closed", func(ctx context.Context, s *Store, _ *testClock, _, _ replaySegment) error {
			return s.Close()
		}, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			clock := newClock()
			opt := testOptions(t, dir, clock)
			opt.MaxAge = 24 * time.Hour
			s := openStore(t, opt)
			r := laneReplay(41, 60000, 3)
			other := laneReplay(43, 60000, 3) // same lane, same pack
			ingestReplay(t, s, r, "")
			ingestReplay(t, s, other, "")
			packID := packOf(t, s, r.id, 0)
			if packOf(t, s, other.id, 0) != packID {
				t.Fatal("the two segments are in different packs")
			}

			buf := make([]byte, MaxBlockBytes)
			inSend := make(chan OpenedBlock)
			proceed := make(chan struct{})
			viewed := make(chan error, 1)
			go func() {
				_, err := s.ViewBlock(ctx, r.id, 0, buf, func(b OpenedBlock) error {
					inSend <- b
					<-proceed
					if !bytes.Equal(b.Ciphertext, r.block.Ciphertext) {
						return errors.New("the view changed before send returned")
					}
					return nil
				})
				viewed <- err
			}()
			b := <-inSend
			if inside(b.Ciphertext, buf) {
				t.Fatal("the block was read into buf, not viewed")
			}

			done := make(chan error, 1)
			go func() { done <- tc.op(ctx, s, clock, r, other) }()
			select {
			case err := <-done:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(20 * time.Second):
				close(proceed)
				t.Fatal("the operation waited for a view's send")
			}
			if tc.removed {
				deadline := time.Now().Add(5 * time.Second)
				for {
					_, err := os.Stat(packPath(dir, packID))
					if errors.Is(err, os.ErrNotExist) {
						break
					}
					if time.Now().After(deadline) {
						close(proceed)
						t.Fatalf("%s is still there (%v)", packName(packID), err)
					}
					time.Sleep(10 * time.Millisecond)
				}
			}
			if !bytes.Equal(b.Ciphertext, r.block.Ciphertext) || !bytes.Equal(b.IV, r.block.IV) {
				close(proceed)
				t.Fatal("the view changed under send")
			}
			if n := s.packs.maps.Load(); n != 1 {
				close(proceed)
				t.Fatalf("%d live mappings while the view is in flight, want 1", n)
			}
			close(proceed)
			if err := <-viewed; err != nil {
				t.Fatal(err)
			}
			if n := s.packs.maps.Load(); n != 0 {
				t.Fatalf("%d live mappings after send returned, want 0", n)
			}

			again := view(s, r.id, 0, make([]byte, MaxBlockBytes))
			switch {
			case tc.name == "closed":
				if !errors.Is(again.err, ErrClosed) || again.sent != 0 {
					t.Fatalf("view after Close: %v, send called %d times", again.err, again.sent)
				}
			case tc.survives:
				if again.err != nil || !bytes.Equal(again.ct, r.block.Ciphertext) {
					t.Fatalf("view after the move: %v", again.err)
				}
				if p := packOf(t, s, r.id, 0); p == packID {
					t.Fatal("the block was not moved")
				}
			default:
				if !errors.Is(again.err, ErrNotFound) || again.sent != 0 {
					t.Fatalf("view of a removed block: %v, send called %d times", again.err, again.sent)
				}
			}
		})
	}
}

// Views run while putters append to the same pack: entries beyond a
// pack's first mapping get a larger one, views of the old one finish
// undisturbed, and every view sends exactly the bytes put.
func TestViewBlockDuringIngest(t *testing.T) {
	if !mapReads {
		t.Skip("packs are not mapped on this platform")
	}
	ctx := context.Background()
	opt := testOptions(t, t.TempDir(), nil)
	opt.PackSize = 64 << 20 // one pack for the whole test
	s := openStore(t, opt)
	s.packs.mapSpan = 0 // map no further than reserved: every view of a newer entry remaps

	const segments = 160
	var (
		mu        sync.Mutex
		published []replaySegment
		firstLen  atomic.Int64
		views     atomic.Int64
		stop      atomic.Bool
	)
	var writers, readers sync.WaitGroup
	for w := range 2 {
		writers.Add(1)
		go func() {
			defer writers.Done()
			for i := w; i < segments; i += 2 {
				r := laneReplay(uint64(1000+i), 1+rand.IntN(pccrc.MaxSegmentSizeV2), 5)
				if err := s.AddOffer(ctx, SegmentOffer{SegmentID: r.id, Version: pccrc.V2, Size: uint32(r.size)}); err != nil {
					t.Error(err)
					return
				}
				if _, err := s.PutBlock(ctx, r.id, 0, r.block); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				published = append(published, r)
				mu.Unlock()
			}
		}()
	}
	for range 3 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			buf := make([]byte, MaxBlockBytes)
			for !stop.Load() {
				mu.Lock()
				n := len(published)
				var r replaySegment
				if n > 0 {
					// Mostly the newest: the entries past the mapping.
					r = published[max(0, n-1-rand.IntN(min(n, 4)))]
					if rand.IntN(4) == 0 {
						r = published[rand.IntN(n)]
					}
				}
				mu.Unlock()
				if n == 0 {
					time.Sleep(time.Millisecond)
					continue
				}
				_, err := s.ViewBlock(ctx, r.id, 0, buf, func(b OpenedBlock) error {
					if inside(b.Ciphertext, buf) {
						return errors.New("read into buf, not viewed")
					}
					if !bytes.Equal(b.IV, r.block.IV) || !bytes.Equal(b.Ciphertext, r.block.Ciphertext) {
						return errors.New("the view is not the block put")
					}
					return nil
				})
				if err != nil {
					t.Error(err)
					return
				}
				if views.Add(1) == 1 {
					firstLen.Store(int64(len(s.packs.get(s.packs.stats()[0].id).mapped.Load().data)))
				}
			}
		}()
	}
	writers.Wait()
	stop.Store(true)
	readers.Wait()
	mustSync(t, s)
	for _, r := range published { // and once more, all committed
		if got := view(s, r.id, 0, make([]byte, MaxBlockBytes)); got.err != nil || !bytes.Equal(got.ct, r.block.Ciphertext) {
			t.Fatalf("segment %x: %v", r.id[:4], got.err)
		}
	}
	stats := s.packs.stats()
	if len(stats) != 1 {
		t.Fatalf("%d packs, want 1", len(stats))
	}
	last := s.packs.get(stats[0].id).mapped.Load()
	if last == nil || int64(len(last.data)) <= firstLen.Load() || int64(len(last.data)) < stats[0].size {
		t.Fatalf("the pack's mapping did not grow with it (first %d bytes, last %d, pack %d)", firstLen.Load(), len(last.data), stats[0].size)
	}
	if n := s.packs.maps.Load(); n != 1 {
		t.Fatalf("%d live mappings after the views, want 1 (old ones released)", n)
	}
	t.Logf("%d views during ingest", views.Load())
}

// With more packs than the bound on mappings, views of packs that find no
// room read into buf, idle mappings are swept, and the bound holds.
func TestViewBlockMappingBound(t *testing.T) {
	if !mapReads {
		t.Skip("packs are not mapped on this platform")
	}
	s := openStore(t, testOptions(t, t.TempDir(), nil))
	s.packs.maxMaps = 2
	s.packs.sweepEvery = 0
	var segs []replaySegment
	for i := range 64 {
		r := laneReplay(uint64(2000+i), 60000, byte(i))
		ingestReplay(t, s, r, "")
		segs = append(segs, r)
	}
	if n := len(s.packs.stats()); n < 4 {
		t.Fatalf("%d packs, want several", n)
	}
	var mapped, read int
	for range 3 {
		for _, r := range segs {
			got := view(s, r.id, 0, make([]byte, MaxBlockBytes))
			if got.err != nil || !bytes.Equal(got.ct, r.block.Ciphertext) {
				t.Fatalf("segment %x: %v", r.id[:4], got.err)
			}
			if got.inBuf {
				read++
			} else {
				mapped++
			}
			if n := s.packs.maps.Load(); n > 2 {
				t.Fatalf("%d live mappings, bound 2", n)
			}
		}
	}
	if mapped == 0 || read == 0 {
		t.Fatalf("%d views mapped, %d read: want both", mapped, read)
	}
}

// ViewBlock allocates no more than OpenBlock does.
func TestViewBlockAllocations(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, testOptions(t, t.TempDir(), nil))
	c := v1Content(5, pccrc.BlockSize)
	ingestV1(t, s, c)
	buf := make([]byte, MaxBlockBytes)
	var sum byte
	send := func(b OpenedBlock) error { sum += b.Ciphertext[0]; return nil }
	s.OpenBlock(ctx, c.id, 0, buf) // fills the record cache
	open := testing.AllocsPerRun(100, func() { s.OpenBlock(ctx, c.id, 0, buf) })
	viewed := testing.AllocsPerRun(100, func() {
		if _, err := s.ViewBlock(ctx, c.id, 0, buf, send); err != nil {
			t.Fatal(err)
		}
	})
	if viewed > open {
		t.Fatalf("ViewBlock allocates %.0f times per block, OpenBlock %.0f", viewed, open)
	}
}

// A panic in send goes on to the caller, and the view's reference is
// released all the same: an HTTP server recovers a handler's panic, and
// the mapping must not leak.
func TestViewBlockSendPanics(t *testing.T) {
	if !mapReads {
		t.Skip("packs are not mapped on this platform")
	}
	s := openStore(t, testOptions(t, t.TempDir(), nil))
	r := newReplay(51, 60000)
	ingestReplay(t, s, r, "")
	func() {
		defer func() {
			if got := recover(); got != "boom" {
				t.Fatalf("recovered %v, want send's panic", got)
			}
		}()
		s.ViewBlock(context.Background(), r.id, 0, make([]byte, MaxBlockBytes), func(OpenedBlock) error { panic("boom") })
	}()
	m := s.packs.get(packOf(t, s, r.id, 0)).mapped.Load()
	if m == nil || m.refs.Load() != 1 {
		t.Fatal("the view's reference to the mapping was not released")
	}
	if got := view(s, r.id, 0, make([]byte, MaxBlockBytes)); got.err != nil || !bytes.Equal(got.ct, r.block.Ciphertext) {
		t.Fatalf("view after the panic: %v", got.err)
	}
}
