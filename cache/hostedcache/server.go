package hostedcache

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"

	"github.com/outpost-appliance/outpost/cache/retrieval"
	"github.com/outpost-appliance/outpost/peerdist/pccrc"
	"github.com/outpost-appliance/outpost/peerdist/pchc"
)

// Offers receives what clients offer. Its methods must return quickly: the
// answer goes back to the client only after they return, and a Windows
// client drops an offer that takes longer than roughly 10 s (protocols.md
// §4.3). Pulling happens afterwards, elsewhere.
type Offers interface {
	// InitialOffer is a PCHC v1.0 offer of one segment by ID. It reports
	// whether the segment's hashes are already known: then the answer is
	// OK (and any missing blocks are pulled from peer), else INTERESTED
	// and the client follows with SEGMENT_INFO.
	InitialOffer(ctx context.Context, peer netip.AddrPort, segmentID []byte) (known bool)
	// SegmentInfo delivers the hashes of the V1 segments of ci, which
	// peer offers; pull what is missing.
	SegmentInfo(ctx context.Context, peer netip.AddrPort, contentTag []byte, ci *pccrc.Info)
	// BatchedOffer offers segments by ID, size and algorithm only (PCHC
	// v2.0): no hashes arrive, so V2 blocks can only be replayed.
	BatchedOffer(ctx context.Context, peer netip.AddrPort, segments []pchc.SegmentDescriptor)
}

// OfferServer answers MS-PCHC offers (INITIAL_OFFER, SEGMENT_INFO,
// BATCHED_OFFER) on either hosted-cache URL, HTTP or HTTPS: Windows is
// strict about which goes where, the MS test suite is not, and accepting
// all everywhere costs nothing (protocols.md §4.1).
type OfferServer struct {
	Offers Offers
	// Observer, if set, is told of every dropped (malformed) offer.
	Observer OfferObserver
	Logger   *slog.Logger
}

// OfferObserver is told of offers that are not taken, for the event log.
// Its methods must not block.
type OfferObserver interface {
	// OfferNotCached: an offered segment will not be cached (its content
	// information is unusable, or it conflicts with what the store knows).
	OfferNotCached(peer netip.AddrPort, segmentID []byte, tag string, err error)
	// OfferMalformed: an offer message was dropped as malformed.
	OfferMalformed(remote string, err error)
}

func (s *OfferServer) logger() *slog.Logger {
	if s.Logger == nil {
		return slog.Default()
	}
	return s.Logger
}

func (s *OfferServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "MS-PCHC takes POST", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, pchc.MaxMessageSize+1))
	if err != nil || len(body) > pchc.MaxMessageSize {
		s.drop(w, r, "request body unreadable or over the size limit")
		return
	}
	peer, err := peerAddr(r.RemoteAddr)
	if err != nil {
		s.drop(w, r, err.Error())
		return
	}
	msg, err := pchc.ParseRequest(body)
	switch {
	case errors.Is(err, pchc.ErrUnknownHashAlgorithm):
		// The MS test suite expects OK and no pull for an unknown
		// algorithm; there is nothing we could pull anyway.
		s.logger().Info("pchc: batched offer with an unknown hash algorithm ignored", "peer", peer)
		s.answer(w, pchc.ResponseOK)
		return
	case err != nil:
		s.drop(w, r, err.Error())
		return
	}
	ctx := r.Context()
	switch m := msg.(type) {
	case pchc.InitialOffer:
		peer = netip.AddrPortFrom(peer.Addr(), m.Port)
		if s.Offers.InitialOffer(ctx, peer, m.HoHoDk) {
			s.answer(w, pchc.ResponseOK)
		} else {
			s.answer(w, pchc.ResponseInterested)
		}
	case pchc.SegmentInfo:
		peer = netip.AddrPortFrom(peer.Addr(), m.Port)
		// SEGMENT_INFO is always answered OK (the MS suite expects OK even
		// for odd or empty content information); only usable content is
		// pulled.
		ci, err := m.ContentInfo()
		if err != nil {
			s.logger().Info("pchc: segment info with unusable content information", "peer", peer, "err", err)
		} else {
			s.Offers.SegmentInfo(ctx, peer, m.ContentTag[:], ci)
		}
		s.answer(w, pchc.ResponseOK)
	case pchc.BatchedOffer:
		s.Offers.BatchedOffer(ctx, netip.AddrPortFrom(peer.Addr(), m.Port), m.Segments)
		s.answer(w, pchc.ResponseOK)
	}
}

// peerAddr is the offering client: the TCP source address of the request
// (the port comes from the message's CONNECTION_INFORMATION).
func peerAddr(remote string) (netip.AddrPort, error) {
	ap, err := netip.ParseAddrPort(remote)
	if err != nil {
		return netip.AddrPort{}, err
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
}

func (s *OfferServer) drop(w http.ResponseWriter, r *http.Request, why string) {
	s.logger().Debug("pchc: dropped malformed offer", "remote", r.RemoteAddr, "reason", why)
	if s.Observer != nil {
		s.Observer.OfferMalformed(r.RemoteAddr, errors.New(why))
	}
	w.Header().Set("Connection", "close")
	w.WriteHeader(http.StatusBadRequest)
}

func (s *OfferServer) answer(w http.ResponseWriter, code pchc.ResponseCode) {
	out, _ := pchc.Response{Code: code}.Marshal()
	w.Header().Set("Content-Length", strconv.Itoa(len(out)))
	w.WriteHeader(http.StatusOK)
	w.Write(out)
}

// Handler routes a hosted-cache port: both PCHC URLs to offers and the
// MS-PCCRR URL to retrieval, matched case-insensitively with or without the
// trailing slash, as http.sys does; anything else is 404.
func Handler(offers *OfferServer, blocks *retrieval.Server) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := pchc.MatchPath(r.URL.Path); ok {
			offers.ServeHTTP(w, r)
			return
		}
		if retrieval.MatchPath(r.URL.Path) {
			blocks.ServeHTTP(w, r)
			return
		}
		http.NotFound(w, r)
	})
}
