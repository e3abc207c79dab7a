package holders

import (
	"net/netip"
	"testing"
	"time"

	"github.com/outpost-appliance/outpost/peerdist/pccrc"
)

func TestTable(t *testing.T) {
	now := time.Unix(1000, 0)
	tab := New(2, time.Hour)
	tab.now = func() time.Time { return now }
	a, b, c := netip.MustParseAddrPort("10.2.0.5:1337"), netip.MustParseAddrPort("10.2.0.6:1337"), netip.MustParseAddrPort("10.3.0.5:1337")
	id1, id2, id3 := []byte{1}, []byte{2}, []byte{3}

	tab.Add(Segment{ID: id1, Version: pccrc.V1, Blocks: 3, Holders: []Holder{{Addr: a, Leader: "b"}}})
	tab.Add(Segment{ID: id1, Size: 5000, Blocks: 2, Holders: []Holder{{Addr: a}, {Addr: b, Leader: "b"}}})
	got, ok := tab.Lookup(id1)
	if !ok || got.Version != pccrc.V1 || got.Size != 5000 || got.Blocks != 3 || len(got.Holders) != 2 || got.Holders[0].Addr != a {
		t.Fatalf("merged entry: %+v", got)
	}
	// A failing holder goes last; the one that served goes first.
	tab.Failed(id1, a)
	tab.Succeeded(id1, b)
	if got, _ := tab.Lookup(id1); got.Holders[0].Addr != b || got.Holders[1].Addr != a {
		t.Errorf("order after failure: %+v", got.Holders)
	}
	// Bounded: a third segment evicts the oldest.
	now = now.Add(time.Minute)
	tab.Add(Segment{ID: id2, Holders: []Holder{{Addr: c}}})
	now = now.Add(time.Minute)
	tab.Add(Segment{ID: id3, Holders: []Holder{{Addr: c}}})
	if _, ok := tab.Lookup(id1); ok || tab.Len() != 2 {
		t.Errorf("the oldest entry was not evicted: len %d", tab.Len())
	}
	// Expiry.
	now = now.Add(2 * time.Hour)
	if _, ok := tab.Lookup(id3); ok {
		t.Error("expired entry returned")
	}
	// Nothing to record without a holder.
	tab.Add(Segment{ID: []byte{4}})
	if _, ok := tab.Lookup([]byte{4}); ok {
		t.Error("entry without holders")
	}
}

func TestWatch(t *testing.T) {
	tab := New(0, 0)
	h := []Holder{{Addr: netip.MustParseAddrPort("10.2.0.5:1337")}}
	tab.Add(Segment{ID: []byte{1}, Holders: h})
	var seen [][]byte
	if known := tab.Watch(func(id []byte) { seen = append(seen, id) }); len(known) != 1 || known[0][0] != 1 {
		t.Fatalf("known %v", known)
	}
	tab.Add(Segment{ID: []byte{2}, Holders: h})
	tab.Add(Segment{ID: []byte{3}}) // no holder: not recorded
	tab.Watch(nil)
	tab.Add(Segment{ID: []byte{4}, Holders: h})
	if len(seen) != 1 || seen[0][0] != 2 {
		t.Fatalf("watched %v, want [[2]]", seen)
	}
}
