package watch

import (
	"encoding/hex"
	"errors"
	"net/netip"

	"github.com/outpost-appliance/outpost/cache/store"
	"github.com/outpost-appliance/outpost/firmware/events"
)

// PullEvents logs each failed pull with its segment and peer: PullFailed
// (14), or VerificationFailed (6401) when the client sent a block that
// does not match its hash. It is a hostedcache.PullObserver, for the
// hosted cache's observer hook (see the appliance).
type PullEvents struct{ Events *events.Log }

// Pulled implements hostedcache.PullObserver: success is no event.
func (PullEvents) Pulled([]byte, string, int, int) {}

// PullFailed implements hostedcache.PullObserver.
func (p PullEvents) PullFailed(segmentID []byte, tag string, peer netip.AddrPort, err error) {
	id := events.PullFailed
	if errors.Is(err, store.ErrVerify) {
		id = events.VerificationFailed
	}
	p.Events.Log(id, events.Fields{"segment": hex.EncodeToString(segmentID), "tag": tag, "peer": peer.String(), "error": err.Error()})
}

// OfferEvents logs offers that are not taken: OfferNotCached (11) for a
// segment that will not be cached, OfferMalformed (6402) for a dropped
// message. It is a hostedcache.OfferObserver.
type OfferEvents struct{ Events *events.Log }

// OfferNotCached implements hostedcache.OfferObserver.
func (o OfferEvents) OfferNotCached(peer netip.AddrPort, segmentID []byte, tag string, err error) {
	o.Events.Log(events.OfferNotCached, events.Fields{"segment": hex.EncodeToString(segmentID), "tag": tag, "peer": peer.String(), "error": err.Error()})
}

// OfferMalformed implements hostedcache.OfferObserver.
func (o OfferEvents) OfferMalformed(remote string, err error) {
	o.Events.Log(events.OfferMalformed, events.Fields{"remote": remote, "error": err.Error()})
}
