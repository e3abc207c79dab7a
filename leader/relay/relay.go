// Package relay is the leader's data relay (TCP 81 by default): an
// MS-PCCRR server for clients that discovery pointed at the leader for
// content held in another subnet. Each block request is served from the
// local store when it holds the block, otherwise fetched from the
// segment's remote holders (failing over from one to the next) and passed
// back unchanged; what was relayed is stored for replay, so the next probe
// for it is answered from this subnet's own store.
//
// The relayed response must be parsed anyway (to check it answers the
// request and to store it), and it is at most 384 KiB, so it is buffered,
// not spliced: zero-copy would save one copy of a block and lose both.
package relay

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/outpost-appliance/outpost/cache/retrieval"
	"github.com/outpost-appliance/outpost/cache/store"
	"github.com/outpost-appliance/outpost/leader/holders"
	"github.com/outpost-appliance/outpost/peerdist/pccrc"
	"github.com/outpost-appliance/outpost/peerdist/pccrr"
)

// Defaults, chosen to keep within iPXE's 3 s to the first byte
// (protocols.md §10): a client that gets nothing in time falls back to the
// origin, so an empty answer before then is better than a late block.
const (
	DefaultMaxActive      = 64
	DefaultBudget         = 2500 * time.Millisecond
	DefaultAttemptTimeout = 1200 * time.Millisecond
	maxAttempts           = 3
	relayTag              = "relay"
)

// Config configures a Server.
type Config struct {
	// Store returns the open store (nil while none is).
	Store   func() *store.Store
	Holders *holders.Table
	// MaxActive bounds requests handled at once; more get empty answers,
	// as a busy Windows peer gives.
	MaxActive int
	// Budget bounds a request from arrival to answer; AttemptTimeout one
	// fetch from one holder.
	Budget, AttemptTimeout time.Duration
	// HTTP fetches from holders (default: a keep-alive client).
	HTTP *http.Client
	// Relayed is told the bytes fetched from a holder that leader reported.
	Relayed func(leader string, bytes int)
	Logger  *slog.Logger
}

// Stats are the relay's counters.
type Stats struct {
	Requests      uint64 `json:"requests"`
	FromStore     uint64 `json:"from_store"`     // blocks served from the local store
	Relayed       uint64 `json:"relayed"`        // blocks fetched from a remote holder
	RelayedBytes  uint64 `json:"relayed_bytes"`  // their ciphertext bytes
	Failovers     uint64 `json:"failovers"`      // holders that failed before one served
	Misses        uint64 `json:"misses"`         // no holder could serve the block
	Busy          uint64 `json:"busy"`           // answered empty at MaxActive
	Stored        uint64 `json:"stored"`         // relayed blocks kept for replay
	StoreFailures uint64 `json:"store_failures"` // relayed blocks the store refused
	Malformed     uint64 `json:"malformed"`
}

// Server is the relay's HTTP handler.
type Server struct {
	cfg    Config
	log    *slog.Logger
	active chan struct{}
	http   *http.Client

	requests, fromStore, relayed, relayedBytes, failovers, misses, busy, stored, storeFailures, malformed atomic.Uint64

	segLocks [64]sync.Mutex

	offeredMu sync.Mutex
	offered   map[string]bool // segments AddOffer was called for

	pendingMu sync.Mutex
	pending   map[string]*pendingSegment
}

// New returns a relay server.
func New(cfg Config) *Server {
	if cfg.MaxActive <= 0 {
		cfg.MaxActive = DefaultMaxActive
	}
	if cfg.Budget <= 0 {
		cfg.Budget = DefaultBudget
	}
	if cfg.AttemptTimeout <= 0 {
		cfg.AttemptTimeout = DefaultAttemptTimeout
	}
	if cfg.Holders == nil {
		cfg.Holders = holders.New(0, 0)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	hc := cfg.HTTP
	if hc == nil {
		hc = &http.Client{Transport: &http.Transport{
			DialContext:           (&net.Dialer{Timeout: cfg.AttemptTimeout}).DialContext,
			MaxIdleConnsPerHost:   8,
			IdleConnTimeout:       90 * time.Second,
			ResponseHeaderTimeout: cfg.AttemptTimeout,
		}}
	}
	return &Server{cfg: cfg, log: log, active: make(chan struct{}, cfg.MaxActive), http: hc, offered: map[string]bool{}, pending: map[string]*pendingSegment{}}
}

// Stats returns the counters.
func (s *Server) Stats() Stats {
	return Stats{Requests: s.requests.Load(), FromStore: s.fromStore.Load(), Relayed: s.relayed.Load(),
		RelayedBytes: s.relayedBytes.Load(), Failovers: s.failovers.Load(), Misses: s.misses.Load(),
		Busy: s.busy.Load(), Stored: s.stored.Load(), StoreFailures: s.storeFailures.Load(),
		Malformed: s.malformed.Load()}
}

// Handler serves the retrieval path only.
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !retrieval.MatchPath(r.URL.Path) {
			http.NotFound(w, r)
			return
		}
		s.ServeHTTP(w, r)
	})
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "MS-PCCRR takes POST", http.StatusMethodNotAllowed)
		return
	}
	s.requests.Add(1)
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.Budget)
	defer cancel()
	body, err := io.ReadAll(io.LimitReader(r.Body, pccrr.MaxRequestSize+1))
	if err != nil || len(body) > pccrr.MaxRequestSize {
		s.drop(w, "request unreadable or too large")
		return
	}
	msg, err := pccrr.ParseRequest(body)
	var verr *pccrr.VersionError
	switch {
	case errors.As(err, &verr):
		s.reply(w, pccrr.NewNegoResp())
		return
	case err != nil:
		s.drop(w, err.Error())
		return
	}
	select {
	case s.active <- struct{}{}:
		defer func() { <-s.active }()
	default:
		s.busy.Add(1)
		s.reply(w, emptyAnswer(msg))
		return
	}
	switch req := msg.(type) {
	case *pccrr.NegoReq:
		s.reply(w, pccrr.NewNegoResp())
	case *pccrr.GetBlks:
		s.getBlock(ctx, w, req, body)
	case *pccrr.GetBlkList:
		s.getBlockList(ctx, w, req, body)
	case *pccrr.GetSegList:
		s.getSegList(ctx, w, req)
	default:
		s.drop(w, "a response type sent as a request")
	}
}

func (s *Server) drop(w http.ResponseWriter, why string) {
	s.malformed.Add(1)
	s.log.Debug("relay: dropped malformed request", "reason", why)
	w.Header().Set("Connection", "close")
	w.WriteHeader(http.StatusBadRequest)
}

func emptyAnswer(m pccrr.Message) pccrr.Message {
	switch req := m.(type) {
	case *pccrr.GetBlks:
		return pccrr.NotFoundBlk(req)
	case *pccrr.GetBlkList:
		return pccrr.NotFoundBlkList(req)
	case *pccrr.GetSegList:
		return pccrr.NotFoundSegList(req)
	}
	return pccrr.NewNegoResp()
}

func (s *Server) reply(w http.ResponseWriter, m pccrr.Message) {
	out, err := m.Marshal()
	if err != nil {
		s.log.Error("relay: encoding reply", "type", m.Type(), "err", err)
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	s.write(w, out)
}

func (s *Server) write(w http.ResponseWriter, raw []byte) {
	w.Header().Set("Content-Length", strconv.Itoa(len(raw)))
	w.WriteHeader(http.StatusOK)
	w.Write(raw)
}

// getBlock serves a block from the store, else from a remote holder.
func (s *Server) getBlock(ctx context.Context, w http.ResponseWriter, req *pccrr.GetBlks, body []byte) {
	index, _ := req.FirstBlock()
	if st := s.cfg.Store(); st != nil {
		if info, err := st.Segment(ctx, req.SegmentID); err == nil && info.Held.Has(index) {
			buf := make([]byte, store.MaxBlockBytes)
			if blk, err := st.ReadBlock(ctx, req.SegmentID, index, buf); err == nil {
				s.fromStore.Add(1)
				s.reply(w, pccrr.NewBlk(req.SegmentID, index, &info.Held, blk.Crypto, blk.Ciphertext, blk.IV))
				return
			}
		}
	}
	seg, ok := s.cfg.Holders.Lookup(req.SegmentID)
	if !ok {
		s.misses.Add(1)
		s.reply(w, pccrr.NotFoundBlk(req))
		return
	}
	for i, h := range seg.Holders {
		if i >= maxAttempts || ctx.Err() != nil {
			break
		}
		raw, msg, err := s.fetch(ctx, h.Addr, body)
		var blk *pccrr.Blk
		if err == nil {
			var ok bool
			blk, ok = msg.(*pccrr.Blk)
			switch {
			case !ok || !blk.Answers(req):
				err = fmt.Errorf("holder answered with %v not the block asked for", msg.Type())
			case len(blk.Block) == 0:
				err = errors.New("holder does not have the block")
			}
		}
		if err != nil {
			s.cfg.Holders.Failed(req.SegmentID, h.Addr)
			s.failovers.Add(1)
			s.log.Debug("relay: holder failed", "holder", h.Addr, "segment", shortID(req.SegmentID), "block", index, "err", err)
			continue
		}
		s.cfg.Holders.Succeeded(req.SegmentID, h.Addr)
		s.relayed.Add(1)
		s.relayedBytes.Add(uint64(len(blk.Block)))
		if s.cfg.Relayed != nil {
			s.cfg.Relayed(h.Leader, len(blk.Block))
		}
		// The holder's answer goes back exactly as it came.
		s.write(w, raw)
		// Then keep it, so this subnet answers for it next time. The
		// client already has its block; storing only delays this
		// handler, not the answer.
		s.keep(context.WithoutCancel(ctx), seg, index, blk)
		return
	}
	s.misses.Add(1)
	s.reply(w, pccrr.NotFoundBlk(req))
}

// getBlockList asks a holder (the client wants to know what it can get
// here); with none it answers from the store.
func (s *Server) getBlockList(ctx context.Context, w http.ResponseWriter, req *pccrr.GetBlkList, body []byte) {
	if seg, ok := s.cfg.Holders.Lookup(req.SegmentID); ok {
		for i, h := range seg.Holders {
			if i >= maxAttempts || ctx.Err() != nil {
				break
			}
			raw, msg, err := s.fetch(ctx, h.Addr, body)
			if bl, ok := msg.(*pccrr.BlkList); err == nil && ok && bl.Answers(req) {
				s.write(w, raw)
				return
			}
			s.cfg.Holders.Failed(req.SegmentID, h.Addr)
		}
	}
	if st := s.cfg.Store(); st != nil {
		if info, err := st.Segment(ctx, req.SegmentID); err == nil {
			s.reply(w, pccrr.NewBlkList(req, &info.Held))
			return
		}
	}
	s.reply(w, pccrr.NotFoundBlkList(req))
}

// getSegList says which segments can be had here: stored or relayable.
func (s *Server) getSegList(ctx context.Context, w http.ResponseWriter, req *pccrr.GetSegList) {
	st := s.cfg.Store()
	s.reply(w, pccrr.NewSegList(req, func(id []byte) bool {
		if _, ok := s.cfg.Holders.Lookup(id); ok {
			return true
		}
		if st == nil {
			return false
		}
		ok, err := st.HasSegment(ctx, id)
		return err == nil && ok
	}))
}

// fetch posts the client's request, unchanged, to a holder and returns
// the raw answer and its parse.
func (s *Server) fetch(ctx context.Context, holder netip.AddrPort, body []byte) ([]byte, pccrr.Message, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.AttemptTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+holder.String()+pccrr.Path, bytes.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	resp, err := s.http.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return nil, nil, fmt.Errorf("HTTP %s", resp.Status)
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, pccrr.TransportHeaderSize+pccrr.MaxResponseSize+1))
	if err != nil {
		return nil, nil, err
	}
	msg, err := pccrr.ParseResponse(raw)
	if err != nil {
		return nil, nil, err
	}
	return raw, msg, nil
}

// keep stores a relayed block for replay.
func (s *Server) keep(ctx context.Context, seg holders.Segment, index uint32, blk *pccrr.Blk) {
	st := s.cfg.Store()
	if st == nil {
		return
	}
	// One segment's blocks are stored one at a time: a reshape must not
	// race a concurrent put of the same segment.
	lock := &s.segLocks[stripe(seg.ID)]
	lock.Lock()
	defer lock.Unlock()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	block := store.Block{Crypto: blk.Crypto, IV: blk.IV, Ciphertext: blk.Block}
	if s.hold(ctx, st, seg, index, block) {
		return
	}
	s.put(ctx, st, seg, index, block)
}

// put stores a relayed block, telling the store about its segment first.
func (s *Server) put(ctx context.Context, st *store.Store, seg holders.Segment, index uint32, block store.Block) {
	if err := s.offer(ctx, st, seg, index, block); err != nil {
		s.storeFailures.Add(1)
		s.log.Debug("relay: relayed block not stored", "segment", shortID(seg.ID), "block", index, "err", err)
		return
	}
	res, err := st.PutBlock(ctx, seg.ID, index, block)
	if err != nil {
		s.storeFailures.Add(1)
		s.log.Debug("relay: relayed block not stored", "segment", shortID(seg.ID), "block", index, "err", err)
		return
	}
	if res.Stored {
		s.stored.Add(1)
	}
}

// offer tells the store about a relayed segment before its first block.
func (s *Server) offer(ctx context.Context, st *store.Store, seg holders.Segment, index uint32, blk store.Block) error {
	s.offeredMu.Lock()
	done := s.offered[string(seg.ID)]
	s.offeredMu.Unlock()
	if done {
		return nil
	}
	if _, err := st.Segment(ctx, seg.ID); err == nil {
		return nil // known already (offered, or content information)
	}
	version, size := SegmentShape(seg.Version, seg.Size, index, len(blk.Ciphertext))
	err := st.AddOffer(ctx, store.SegmentOffer{SegmentID: seg.ID, Version: version, Size: size, ContentTag: []byte(relayTag)})
	if err != nil && !errors.Is(err, store.ErrConflict) {
		return err
	}
	s.offeredMu.Lock()
	if len(s.offered) > 65536 {
		clear(s.offered)
	}
	s.offered[string(seg.ID)] = true
	s.offeredMu.Unlock()
	return nil
}

// SegmentShape is the version and size a relayed segment is recorded
// with. A peer leader's store reports both; a Windows client's ProbeMatch
// neither, and replayed ciphertext cannot tell a plaintext length to the
// byte (PKCS#7 adds 1–16 bytes), so the shape is inferred:
//   - V2: the whole segment is block 0; its size is taken as the
//     ciphertext length less 16, the least the store's shape check accepts.
//   - V1 (or unknown): a block shorter than a full block is the segment's
//     last, which fixes the size the same way; a full block implies
//     nothing more, so a full 32 MiB segment is assumed.
//
// Clients know the true length from their content information and cut the
// decrypted block to it, so replay is unaffected; only the store's
// accounting is approximate, and content information arriving later
// replaces the guess.
func SegmentShape(version pccrc.Version, size uint32, index uint32, cipherLen int) (pccrc.Version, uint32) {
	if version == 0 {
		version = pccrc.V1
	}
	if size != 0 {
		return version, size
	}
	plain := uint32(max(cipherLen-16, 1))
	if version == pccrc.V2 {
		return version, min(plain, pccrc.MaxSegmentSizeV2)
	}
	if cipherLen < pccrc.BlockSize {
		return version, index*pccrc.BlockSize + plain
	}
	return version, pccrc.SegmentSizeV1
}

func stripe(id []byte) int {
	h := 0
	for _, b := range id {
		h = h*31 + int(b)
	}
	return h & 63
}

func shortID(id []byte) string {
	const n = 8
	if len(id) > n {
		id = id[:n]
	}
	return fmt.Sprintf("%X…", id)
}
