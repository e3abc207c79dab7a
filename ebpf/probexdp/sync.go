package probexdp

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cilium/ebpf"

	"github.com/outpost-appliance/outpost/cache/store"
)

// listPage is how many segments one ListSegments call returns during a
// full synchronisation.
const listPage = 1024

// SegmentStore is what SyncHeld reads of the segment store (*store.Store).
type SegmentStore interface {
	Subscribe() *store.Subscription
	ListSegments(ctx context.Context, after []byte, limit int) ([]store.SegmentInfo, []byte, error)
}

// SyncHeld keeps the held map equal to the segments st holds (at least
// one block), from a full listing and then the change feed, until ctx
// ends or the store closes. While the map is not known to be complete
// (before the first listing, after a resync, when the map is full) the
// program hands every probe to the leader rather than drop one it might
// have answered.
func (p *Program) SyncHeld(ctx context.Context, st SegmentStore) error {
	sub := st.Subscribe()
	defer sub.Close()
	defer p.setFlag(flagHeldSynced, false)
	if err := p.resyncHeld(ctx, st); err != nil {
		return err
	}
	for {
		ev, err := sub.Next(ctx)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, store.ErrClosed) {
				return nil
			}
			return fmt.Errorf("probexdp: store feed: %w", err)
		}
		switch ev.Kind {
		case store.SegmentAdded:
			if err := p.putHeld(ev.SegmentID); err != nil {
				p.setFlag(flagHeldSynced, false) // full: answer from the store
			}
		case store.SegmentEvicted, store.SegmentDeleted:
			p.deleteHeld(ev.SegmentID)
		case store.StoreFlushed, store.Resync:
			if err := p.resyncHeld(ctx, st); err != nil {
				return err
			}
		}
	}
}

// resyncHeld rebuilds the held map from a listing of the store. Events
// that follow are applied on top (they may repeat what the listing saw).
func (p *Program) resyncHeld(ctx context.Context, st SegmentStore) error {
	if err := p.setFlag(flagHeldSynced, false); err != nil {
		return err
	}
	want := map[[SegmentIDSize]byte]bool{}
	var after []byte
	for {
		segs, next, err := st.ListSegments(ctx, after, listPage)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, store.ErrClosed) {
				return nil
			}
			return fmt.Errorf("probexdp: list segments: %w", err)
		}
		for _, s := range segs {
			if len(s.SegmentID) == SegmentIDSize && s.HeldBlocks() > 0 {
				want[[SegmentIDSize]byte(s.SegmentID)] = true
			}
		}
		if next == nil {
			break
		}
		after = next
	}
	complete := true
	if err := replaceKeys(p.objs.Held, want); err != nil {
		complete = false // the map is full: the leader decides from the store
	}
	return p.setFlag(flagHeldSynced, complete)
}

func (p *Program) putHeld(id []byte) error {
	if len(id) != SegmentIDSize {
		return nil // longer IDs never take the fast path
	}
	return p.objs.Held.Update([SegmentIDSize]byte(id), uint8(1), ebpf.UpdateAny)
}

func (p *Program) deleteHeld(id []byte) {
	if len(id) == SegmentIDSize {
		_ = p.objs.Held.Delete([SegmentIDSize]byte(id))
	}
}

// replaceKeys makes m's keys exactly want.
func replaceKeys(m *ebpf.Map, want map[[SegmentIDSize]byte]bool) error {
	var stale [][SegmentIDSize]byte
	var key [SegmentIDSize]byte
	var val uint8
	it := m.Iterate()
	for it.Next(&key, &val) {
		if !want[key] {
			stale = append(stale, key)
		}
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("probexdp: iterate %s: %w", m, err)
	}
	for _, k := range stale {
		_ = m.Delete(k)
	}
	for k := range want {
		if err := m.Update(k, uint8(1), ebpf.UpdateAny); err != nil {
			return fmt.Errorf("probexdp: update %s: %w", m, err)
		}
	}
	return nil
}

// Peers is what SyncPeers reads of the leader's table of segments other
// subnets hold (*holders.Table).
type Peers interface {
	// Watch calls fn with the ID of every segment added from now on and
	// returns the IDs known now.
	Watch(fn func(id []byte)) [][]byte
	// Lookup reports whether the segment is still known (entries
	// expire).
	Lookup(id []byte) bool
}

// peerPrune is how often expired entries leave the peer map.
const peerPrune = 30 * time.Second

// SyncPeers keeps the peer map a superset of the segments peers are
// known to hold until ctx ends: additions as they happen, expiries every
// peerPrune. A nil table leaves the map empty, which is then complete.
func (p *Program) SyncPeers(ctx context.Context, t Peers) error {
	defer p.setFlag(flagPeerSynced, false)
	if t == nil {
		if err := p.setFlag(flagPeerSynced, true); err != nil {
			return err
		}
		<-ctx.Done()
		return nil
	}
	full := make(chan struct{}, 1)
	put := func(id []byte) {
		if len(id) != SegmentIDSize {
			return
		}
		if p.objs.Peer.Update([SegmentIDSize]byte(id), uint8(1), ebpf.UpdateAny) != nil {
			select {
			case full <- struct{}{}:
			default:
			}
		}
	}
	complete := true
	for _, id := range t.Watch(put) {
		if len(id) == SegmentIDSize && p.objs.Peer.Update([SegmentIDSize]byte(id), uint8(1), ebpf.UpdateAny) != nil {
			complete = false
		}
	}
	defer t.Watch(nil)
	if err := p.setFlag(flagPeerSynced, complete); err != nil {
		return err
	}
	tick := time.NewTicker(peerPrune)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-full:
			p.setFlag(flagPeerSynced, false) // full: the leader decides from the table
		case <-tick.C:
			p.prunePeers(t)
		}
	}
}

// prunePeers drops the entries the table no longer knows.
func (p *Program) prunePeers(t Peers) {
	var stale [][SegmentIDSize]byte
	var key [SegmentIDSize]byte
	var val uint8
	it := p.objs.Peer.Iterate()
	for it.Next(&key, &val) {
		if !t.Lookup(key[:]) {
			stale = append(stale, key)
		}
	}
	for _, k := range stale {
		_ = p.objs.Peer.Delete(k)
	}
}
