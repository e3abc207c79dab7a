package hostedcache

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"

	"github.com/outpost-appliance/outpost/cache/retrieval"
	"github.com/outpost-appliance/outpost/cache/store"
	"github.com/outpost-appliance/outpost/peerdist/pccrc"
	"github.com/outpost-appliance/outpost/peerdist/pccrr"
	"github.com/outpost-appliance/outpost/peerdist/pchc"
)

// Cache joins the offer server, the puller and the segment store: it is
// the Offers the PCHC server hands offers to, the Sink pulled blocks go
// to, and (through Source) what retrieval serves from.
type Cache struct {
	Store  *store.Store
	Puller *Puller
	Stats  *Stats
	// Observer, if set, is told of offered segments that will not be
	// cached.
	Observer OfferObserver
	Logger   *slog.Logger
}

func (c *Cache) notCached(peer netip.AddrPort, segmentID []byte, tag string, err error) {
	if c.Observer != nil {
		c.Observer.OfferNotCached(peer, segmentID, tag, err)
	}
}

func (c *Cache) logger() *slog.Logger {
	if c.Logger == nil {
		return slog.Default()
	}
	return c.Logger
}

// InitialOffer answers OK when the store knows the segment's hashes (and
// pulls whatever blocks it lacks), INTERESTED otherwise.
func (c *Cache) InitialOffer(ctx context.Context, peer netip.AddrPort, segmentID []byte) bool {
	info, err := c.Store.Segment(ctx, segmentID)
	if err != nil || !info.HashesKnown {
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			c.logger().Warn("hosted cache: initial offer: reading the store", "err", err)
		}
		return false
	}
	tag := pchc.TagOther
	if len(info.Tags) > 0 {
		tag = info.Tags[0]
	}
	c.Stats.Offered(tag)
	if !info.Complete() {
		c.Puller.Enqueue(peer, segmentID, tag)
	}
	return true
}

// SegmentInfo records the hashes of the offered V1 segments, then pulls.
func (c *Cache) SegmentInfo(ctx context.Context, peer netip.AddrPort, contentTag []byte, ci *pccrc.Info) {
	tag := pchc.TagName(contentTag)
	for i, seg := range ci.Segments {
		c.Stats.Offered(tag)
		id, err := c.Store.AddSegmentInfo(ctx, pccrc.V1, ci.Algo, seg, contentTag)
		if err != nil {
			c.logger().Info("hosted cache: segment info not usable", "peer", peer, "segment", i, "err", err)
			c.notCached(peer, ci.ID(i), tag, err)
			continue
		}
		c.Puller.Enqueue(peer, id, tag)
	}
}

// BatchedOffer records the offered segments (no hashes: their blocks will
// be kept for replay), then pulls.
func (c *Cache) BatchedOffer(ctx context.Context, peer netip.AddrPort, segments []pchc.SegmentDescriptor) {
	for _, d := range segments {
		tag := pchc.TagName(d.ContentTag)
		c.Stats.Offered(tag)
		version := pccrc.V2
		if d.HashAlgorithm == pchc.HashSHA256 {
			version = pccrc.V1
		}
		offer := store.SegmentOffer{SegmentID: d.HoHoDk[:], Version: version, Size: d.SegmentSize, ContentTag: d.ContentTag}
		if err := c.Store.AddOffer(ctx, offer); err != nil {
			c.logger().Info("hosted cache: batched offer not usable", "peer", peer, "err", err)
			c.notCached(peer, d.HoHoDk[:], tag, err)
			continue
		}
		c.Puller.Enqueue(peer, d.HoHoDk[:], tag)
	}
}

// Missing implements Sink.
func (c *Cache) Missing(ctx context.Context, segmentID []byte) ([]uint32, error) {
	info, err := c.Store.Segment(ctx, segmentID)
	if err != nil {
		return nil, err
	}
	var missing []uint32
	for i := range uint32(info.BlockCount) {
		if !info.Held.Has(i) {
			missing = append(missing, i)
		}
	}
	return missing, nil
}

// Put implements Sink: the store verifies what it can and replays the rest.
func (c *Cache) Put(ctx context.Context, segmentID []byte, index uint32, blk *pccrr.Blk) error {
	_, err := c.Store.PutBlock(ctx, segmentID, index, store.Block{Crypto: blk.Crypto, IV: blk.IV, Ciphertext: blk.Block})
	return err
}

// Source returns the store as a retrieval source.
func (c *Cache) Source() retrieval.Source { return storeSource{c.Store} }

// storeSource serves retrieval from the store.
type storeSource struct{ st *store.Store }

func (s storeSource) Segment(ctx context.Context, segmentID []byte) (retrieval.SegmentState, error) {
	info, err := s.st.Segment(ctx, segmentID)
	if err != nil {
		return retrieval.SegmentState{}, notFound(err)
	}
	state := retrieval.SegmentState{Held: info.Held, FirstSeen: info.FirstSeen, Tag: pchc.TagOther}
	if len(info.Tags) > 0 {
		state.Tag = info.Tags[0]
	}
	return state, nil
}

func (s storeSource) ReadBlock(ctx context.Context, segmentID []byte, index uint32, buf []byte) (retrieval.Block, error) {
	blk, err := s.st.ReadBlock(ctx, segmentID, index, buf)
	if err != nil {
		return retrieval.Block{}, notFound(err)
	}
	return retrieval.Block{Crypto: blk.Crypto, IV: blk.IV, Ciphertext: blk.Ciphertext}, nil
}

// ViewBlock implements retrieval.BlockViewer: the block goes from the
// store's mapped pack to the socket without a copy through the server.
func (s storeSource) ViewBlock(ctx context.Context, segmentID []byte, index uint32, buf []byte, send func(retrieval.OpenedBlock) error) (retrieval.OpenedBlock, error) {
	blk, err := s.st.ViewBlock(ctx, segmentID, index, buf, func(blk store.OpenedBlock) error {
		return send(retrieval.OpenedBlock{State: retrieval.SegmentState{Held: blk.Held, Tag: blk.Tag}, Crypto: blk.Crypto, IV: blk.IV, Ciphertext: blk.Ciphertext})
	})
	out := retrieval.OpenedBlock{State: retrieval.SegmentState{Held: blk.Held, Tag: blk.Tag}, Crypto: blk.Crypto}
	if err != nil {
		return out, notFound(err)
	}
	return out, nil
}

// notFound maps the store's "not held" (and "corrupt, dropped") to
// retrieval's, which answers it with an empty reply without logging.
func notFound(err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("%w: %w", retrieval.ErrNotFound, err)
	}
	return err
}
