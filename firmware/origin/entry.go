package origin

import (
	"container/list"
	"errors"
	"fmt"
	"sync"

	"github.com/outpost-appliance/outpost/peerdist/pccrc"
)

// entry is the content information of one file version: the wire form of
// the whole-file answer, and its parsed form for range requests.
type entry struct {
	stamp   stamp
	version pccrc.Version
	raw     []byte
	info    *pccrc.Info
}

// newEntry parses raw and checks that it describes the whole of a file of
// the stamp's size.
func newEntry(st stamp, v pccrc.Version, raw []byte) (*entry, error) {
	info, err := pccrc.Parse(raw)
	if err != nil {
		return nil, err
	}
	if info.Version != v {
		return nil, fmt.Errorf("content information V%d, want V%d", info.Version, v)
	}
	if err := checkWhole(info, st.Size); err != nil {
		return nil, err
	}
	return &entry{stamp: st, version: v, raw: raw, info: info}, nil
}

// checkWhole checks that info describes the content [0, size) from its
// first segment on.
func checkWhole(info *pccrc.Info, size int64) error {
	start, end := info.Range()
	if start != 0 || end != uint64(size) || len(info.Segments) == 0 || info.Segments[0].Offset != 0 {
		return fmt.Errorf("content information covers [%d, %d), the file has %d bytes", start, end, size)
	}
	return nil
}

// forRange returns the wire form of the content information for the byte
// range [start, start+length).
func (e *entry) forRange(start, length int64) ([]byte, error) {
	sub, err := e.info.Restrict(uint64(start), uint64(length))
	if err != nil {
		return nil, err
	}
	return sub.MarshalBinary()
}

// cacheKey names the content information of a path in one version.
type cacheKey struct {
	rel     string
	version pccrc.Version
}

// memCache keeps recently used entries in memory, bounded in bytes, so a
// busy file's content information is neither re-read nor re-parsed.
type memCache struct {
	mu    sync.Mutex
	limit int64
	used  int64
	order *list.List // front = most recently used; values are *memItem
	items map[cacheKey]*list.Element
}

type memItem struct {
	key  cacheKey
	e    *entry
	cost int64
}

func newMemCache(limit int64) *memCache {
	return &memCache{limit: limit, order: list.New(), items: map[cacheKey]*list.Element{}}
}

var errMemMiss = errors.New("not in memory")

// get returns the entry of k if it is for the file version st.
func (m *memCache) get(k cacheKey, st stamp) (*entry, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	el, ok := m.items[k]
	if !ok {
		return nil, errMemMiss
	}
	it := el.Value.(*memItem)
	if it.e.stamp != st {
		m.remove(el)
		return nil, errMemMiss
	}
	m.order.MoveToFront(el)
	return it.e, nil
}

// put stores e under k, evicting the least recently used entries beyond
// the limit. Entries over a quarter of the limit are not kept.
func (m *memCache) put(k cacheKey, e *entry) {
	// The parsed form holds about as much again as the wire form.
	cost := 2*int64(len(e.raw)) + 256
	m.mu.Lock()
	defer m.mu.Unlock()
	if el, ok := m.items[k]; ok {
		m.remove(el)
	}
	if cost > m.limit/4 {
		return
	}
	m.items[k] = m.order.PushFront(&memItem{key: k, e: e, cost: cost})
	m.used += cost
	for m.used > m.limit {
		m.remove(m.order.Back())
	}
}

func (m *memCache) remove(el *list.Element) {
	it := m.order.Remove(el).(*memItem)
	delete(m.items, it.key)
	m.used -= it.cost
}
