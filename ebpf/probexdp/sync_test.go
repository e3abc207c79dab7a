package probexdp

import (
	"bytes"
	"context"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/outpost-appliance/outpost/cache/store"
	"github.com/outpost-appliance/outpost/peerdist/pccrc"
)

// storeWith opens a store in a temporary directory holding the first
// block of each segment of n segments' worth of random V1 content, and
// returns the segment IDs.
func storeWith(t *testing.T, ctx context.Context, segments int) (*store.Store, [][]byte) {
	t.Helper()
	opt := store.DefaultOptions(t.TempDir())
	opt.LimitPercent, opt.MinFreePercent = 0, 0
	st, err := store.Open(ctx, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	data := make([]byte, segments*pccrc.SegmentSizeV1-1000)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	ci, err := pccrc.GenerateV1(ctx, bytes.NewReader(data), pccrc.SHA256, []byte("secret"))
	if err != nil {
		t.Fatal(err)
	}
	var ids [][]byte
	for i, seg := range ci.Segments {
		if _, err := st.AddSegmentInfo(ctx, ci.Version, ci.Algo, seg, nil); err != nil {
			t.Fatal(err)
		}
		_, n := pccrc.BlockSpan(seg.Size, 0)
		if _, err := st.PutPlainBlock(ctx, ci.ID(i), 0, data[seg.Offset:seg.Offset+uint64(n)]); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, ci.ID(i))
	}
	if err := st.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	return st, ids
}

func (p *Program) heldKeys(t *testing.T) [][]byte {
	t.Helper()
	var out [][]byte
	var key [SegmentIDSize]byte
	var val uint8
	it := p.objs.Held.Iterate()
	for it.Next(&key, &val) {
		out = append(out, bytes.Clone(key[:]))
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(out, bytes.Compare)
	return out
}

func (p *Program) synced(flag uint32) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.flags&flag != 0
}

// eventually polls cond for up to 5 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after 5 s", what)
		}
	}
}

// The held map follows the store: a full listing first (with entries
// that are not in the store removed), then the change feed.
func TestSyncHeld(t *testing.T) {
	requireBPF(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st, ids := storeWith(t, ctx, 3)
	p, err := Load(Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	stale := bytes.Repeat([]byte{9}, 32)
	p.putHeld(stale) // left over: the listing removes it
	done := make(chan error, 1)
	go func() { done <- p.SyncHeld(ctx, st) }()
	want := slices.Clone(ids)
	slices.SortFunc(want, bytes.Compare)
	eventually(t, "initial sync", func() bool { return p.synced(flagHeldSynced) })
	if got := p.heldKeys(t); !slices.EqualFunc(got, want, bytes.Equal) {
		t.Fatalf("held map %x, want %x", got, want)
	}
	if err := st.DeleteSegment(ctx, ids[1]); err != nil {
		t.Fatal(err)
	}
	eventually(t, "deletion", func() bool { return len(p.heldKeys(t)) == 2 })
	if err := st.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, "flush", func() bool { return len(p.heldKeys(t)) == 0 && p.synced(flagHeldSynced) })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if p.synced(flagHeldSynced) {
		t.Fatal("still marked in sync after SyncHeld returned")
	}
}

// fakePeers is a Peers table.
type fakePeers struct {
	known map[string]bool
	watch func([]byte)
}

func (f *fakePeers) Watch(fn func([]byte)) [][]byte {
	f.watch = fn
	var ids [][]byte
	for k := range f.known {
		ids = append(ids, []byte(k))
	}
	return ids
}

func (f *fakePeers) Lookup(id []byte) bool { return f.known[string(id)] }

// The peer map starts from what the table knows and takes additions as
// they come; without a table it is empty and in sync.
func TestSyncPeers(t *testing.T) {
	requireBPF(t)
	p, err := Load(Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx, cancel := context.WithCancel(context.Background())
	a, b := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	peers := &fakePeers{known: map[string]bool{string(a): true}}
	done := make(chan struct{})
	go func() { p.SyncPeers(ctx, peers); close(done) }()
	eventually(t, "initial sync", func() bool { return p.synced(flagPeerSynced) })
	var v uint8
	if p.objs.Peer.Lookup([32]byte(a), &v) != nil {
		t.Fatal("known segment not in the peer map")
	}
	peers.watch(b)
	if p.objs.Peer.Lookup([32]byte(b), &v) != nil {
		t.Fatal("added segment not in the peer map")
	}
	p.prunePeers(peers) // b is not in known: pruned
	if p.objs.Peer.Lookup([32]byte(b), &v) == nil || p.objs.Peer.Lookup([32]byte(a), &v) != nil {
		t.Fatal("prune removed the wrong entries")
	}
	cancel()
	<-done

	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	go p.SyncPeers(ctx, nil)
	eventually(t, "no table", func() bool { return p.synced(flagPeerSynced) })
}
