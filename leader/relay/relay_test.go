package relay

import (
	"bytes"
	"context"
	"math/rand/v2"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/outpost-appliance/outpost/cache/retrieval"
	"github.com/outpost-appliance/outpost/cache/store"
	"github.com/outpost-appliance/outpost/firmware/getcmd"
	"github.com/outpost-appliance/outpost/leader/holders"
	"github.com/outpost-appliance/outpost/peerdist/pccrc"
)

// content is test content of 3 full blocks and a short one (V1).
func content(t *testing.T, n int, version pccrc.Version) ([]byte, *pccrc.Info) {
	t.Helper()
	data := make([]byte, n)
	r := rand.New(rand.NewPCG(uint64(n), 7))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	var ci *pccrc.Info
	var err error
	if version == pccrc.V2 {
		ci, err = pccrc.GenerateV2(context.Background(), bytes.NewReader(data), []byte("server secret"))
	} else {
		ci, err = pccrc.GenerateV1(context.Background(), bytes.NewReader(data), pccrc.SHA256, []byte("server secret"))
	}
	if err != nil {
		t.Fatal(err)
	}
	return data, ci
}

// holder serves content over MS-PCCRR as a Windows peer would.
func holder(t *testing.T, data []byte, ci *pccrc.Info) netip.AddrPort {
	t.Helper()
	srv := httptest.NewServer(&retrieval.Server{Source: retrieval.NewContentSource(ci, bytes.NewReader(data))})
	t.Cleanup(srv.Close)
	return netip.MustParseAddrPort(srv.Listener.Addr().String())
}

func openStore(t *testing.T) *store.Store {
	t.Helper()
	opt := store.DefaultOptions(t.TempDir())
	opt.LimitPercent, opt.MinFreePercent = 0, 0
	st, err := store.Open(context.Background(), opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func fetch(t *testing.T, addr string, ci *pccrc.Info) ([]byte, error) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "out")
	f := getcmd.Fetcher{Client: &retrieval.Client{}, Parallel: 1}
	if _, err := f.Fetch(context.Background(), addr, ci, out); err != nil {
		return nil, err
	}
	return os.ReadFile(out)
}

// TestRelayFetchStoreReplay: a client fetches through the relay from a
// remote holder whose segment size nobody told us; every block arrives
// verified, is stored, and is then served from the store, by the relay
// and by a plain retrieval server over the store (the peer port).
func TestRelayFetchStoreReplay(t *testing.T) {
	for _, tc := range []struct {
		name    string
		size    int
		version pccrc.Version
	}{
		{"V1 with a short last block", 3*pccrc.BlockSize + 4000, pccrc.V1},
		{"V2", 200000, pccrc.V2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data, ci := content(t, tc.size, tc.version)
			st := openStore(t)
			table := holders.New(0, 0)
			remote := holder(t, data, ci)
			for i := range ci.Segments {
				table.Add(holders.Segment{ID: ci.ID(i), Version: tc.version, Holders: []holders.Holder{{Addr: remote, Leader: "b"}}})
			}
			var relayedBytes int
			rs := New(Config{Store: func() *store.Store { return st }, Holders: table,
				Relayed: func(leader string, n int) {
					if leader == "b" {
						relayedBytes += n
					}
				}})
			srv := httptest.NewServer(rs.Handler())
			defer srv.Close()

			got, err := fetch(t, srv.Listener.Addr().String(), ci)
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("through the relay: %v (equal %v)", err, bytes.Equal(got, data))
			}
			blocks := 0
			for _, seg := range ci.Segments {
				blocks += max(len(seg.BlockHashes), 1)
			}
			// Blocks are stored after they are sent: wait for the last.
			s := rs.Stats()
			for deadline := time.Now().Add(5 * time.Second); int(s.Stored) < blocks && time.Now().Before(deadline); s = rs.Stats() {
				time.Sleep(10 * time.Millisecond)
			}
			if int(s.Relayed) != blocks || int(s.Stored) != blocks || s.StoreFailures != 0 || relayedBytes == 0 {
				t.Fatalf("first pass: %+v (blocks %d)", s, blocks)
			}
			// The store may show a put a moment after it returns.
			for i := range ci.Segments {
				for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
					info, err := st.Segment(context.Background(), ci.ID(i))
					if err == nil && info.Held.Len() == max(len(ci.Segments[i].BlockHashes), 1) {
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("segment %d not held: %+v %v", i, info.Held.Ranges(), err)
					}
				}
			}
			got, err = fetch(t, srv.Listener.Addr().String(), ci)
			if s2 := rs.Stats(); err != nil || !bytes.Equal(got, data) || s2.Relayed != s.Relayed || int(s2.FromStore) != blocks {
				t.Fatalf("second pass: %v %+v (first %+v)", err, s2, s)
			}
			peer := httptest.NewServer(&retrieval.Server{Source: storeSource{st}})
			defer peer.Close()
			if got, err = fetch(t, peer.Listener.Addr().String(), ci); err != nil || !bytes.Equal(got, data) {
				t.Fatalf("replayed from the store: %v", err)
			}
		})
	}
}

// TestRelayFailover: a dead holder is skipped for a live one, and a
// segment nobody holds is answered "not found" at once.
func TestRelayFailover(t *testing.T) {
	data, ci := content(t, 2*pccrc.BlockSize, pccrc.V1)
	table := holders.New(0, 0)
	dead := httptest.NewServer(nil)
	deadAddr := netip.MustParseAddrPort(dead.Listener.Addr().String())
	dead.Close()
	table.Add(holders.Segment{ID: ci.ID(0), Holders: []holders.Holder{{Addr: deadAddr}, {Addr: holder(t, data, ci)}}})
	rs := New(Config{Store: func() *store.Store { return nil }, Holders: table})
	srv := httptest.NewServer(rs.Handler())
	defer srv.Close()
	got, err := fetch(t, srv.Listener.Addr().String(), ci)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("fetch: %v", err)
	}
	if s := rs.Stats(); s.Failovers != 1 || s.Relayed != 2 {
		t.Errorf("stats %+v: the dead holder should have been tried once, then put last", s)
	}

	_, other := content(t, 1000, pccrc.V1)
	if _, err := fetch(t, srv.Listener.Addr().String(), other); err == nil {
		t.Fatal("fetched a segment nobody holds")
	}
	if s := rs.Stats(); s.Misses != 1 {
		t.Errorf("misses %d", s.Misses)
	}
}

func TestSegmentShape(t *testing.T) {
	tests := []struct {
		name        string
		version     pccrc.Version
		size, index uint32
		cipher      int
		wantV       pccrc.Version
		wantSize    uint32
	}{
		{"known", pccrc.V1, 1234, 0, 1248, pccrc.V1, 1234},
		{"V2 from its ciphertext", pccrc.V2, 0, 0, 100016, pccrc.V2, 100000},
		{"V1 full block: a full segment", pccrc.V1, 0, 2, 65552, pccrc.V1, pccrc.SegmentSizeV1},
		{"V1 short block is the last", pccrc.V1, 0, 3, 4016, pccrc.V1, 3*pccrc.BlockSize + 4000},
		{"unknown version is V1", 0, 0, 0, 32, pccrc.V1, 16},
	}
	for _, tt := range tests {
		v, size := SegmentShape(tt.version, tt.size, tt.index, tt.cipher)
		if v != tt.wantV || size != tt.wantSize {
			t.Errorf("%s: got V%d %d, want V%d %d", tt.name, v, size, tt.wantV, tt.wantSize)
		}
	}
}

// storeSource serves the store the way the hosted cache's peer port does.
type storeSource struct{ st *store.Store }

func (s storeSource) Segment(ctx context.Context, id []byte) (retrieval.SegmentState, error) {
	info, err := s.st.Segment(ctx, id)
	if err != nil {
		return retrieval.SegmentState{}, retrieval.ErrNotFound
	}
	return retrieval.SegmentState{Held: info.Held, FirstSeen: info.FirstSeen}, nil
}

func (s storeSource) ReadBlock(ctx context.Context, id []byte, index uint32, buf []byte) (retrieval.Block, error) {
	b, err := s.st.ReadBlock(ctx, id, index, buf)
	if err != nil {
		return retrieval.Block{}, retrieval.ErrNotFound
	}
	return retrieval.Block{Crypto: b.Crypto, IV: b.IV, Ciphertext: b.Ciphertext}, nil
}
