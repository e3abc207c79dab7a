// Package retrieval speaks MS-PCCRR, the BranchCache retrieval protocol,
// over HTTP: a Server that answers block requests from any Source of
// stored blocks (the segment store, or a file being offered), and a Client
// that fetches blocks from a peer or hosted cache. Serving never encrypts:
// a Source hands out ciphertext prepared when the block was stored.
package retrieval

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/outpost-appliance/outpost/peerdist/pccrr"
)

// ErrNotFound is returned by a Source for a segment or block it does not
// hold.
var ErrNotFound = errors.New("not held")

// Block is a stored block ready to serve: its ciphertext, the IV and the
// algorithm it was encrypted with.
type Block struct {
	Crypto     pccrr.CryptoAlgo
	IV         []byte
	Ciphertext []byte
}

// SegmentState is what a Source knows of a segment it holds.
type SegmentState struct {
	Held      pccrr.BlockSet // blocks held (V2 segments: block 0)
	FirstSeen time.Time      // when the segment entered the cache (SEGLIST ages)
	Tag       string         // content tag name for statistics (pchc.TagName)
}

// Source is where a Server's blocks come from.
type Source interface {
	// Segment reports the held blocks of a segment, or ErrNotFound.
	Segment(ctx context.Context, segmentID []byte) (SegmentState, error)
	// ReadBlock copies a held block into buf, which has room for
	// MaxBlockBytes, and returns it with Ciphertext and IV slicing buf; or
	// ErrNotFound. Copying into a caller's pooled buffer keeps serving
	// free of allocations proportional to the block.
	ReadBlock(ctx context.Context, segmentID []byte, index uint32, buf []byte) (Block, error)
}

// BlockViewer is implemented by a Source that can lend a held block's
// bytes where they lie (the segment store's mapped packs), so that they
// go to the socket without being copied into the server's buffer first,
// and its segment's state comes with it from one lookup. The server
// prefers it to Segment + ReadBlock.
type BlockViewer interface {
	// ViewBlock calls send once with a held, intact block, whose IV and
	// Ciphertext are valid only until send returns (buf, with room for
	// MaxBlockBytes, may hold them), and returns send's error; the
	// OpenedBlock it returns has State and Crypto only. For a block
	// not held it returns ErrNotFound without calling send, with State
	// set if the segment is known.
	ViewBlock(ctx context.Context, segmentID []byte, index uint32, buf []byte, send func(OpenedBlock) error) (OpenedBlock, error)
}

// OpenedBlock is a block lent by a BlockViewer.
type OpenedBlock struct {
	State      SegmentState // Held and Tag
	Crypto     pccrr.CryptoAlgo
	IV         []byte
	Ciphertext []byte
}

// MaxBlockBytes bounds a stored block with its IV: a 128 KiB V2 segment
// padded by AES-CBC (PKCS#7 adds up to 16 bytes), plus a 16-byte IV.
const MaxBlockBytes = 128<<10 + 16 + 16

// Observer receives per-request outcomes, for statistics. Its methods must
// not block.
type Observer interface {
	// Served: a block was sent; tag is its segment's content tag name.
	Served(segmentID []byte, tag string, index uint32, bytes int)
	// Missed: a requested block is not held; tag is "" when the segment
	// is unknown.
	Missed(segmentID []byte, tag string, index uint32)
}

// Defaults from Windows (protocols.md §3.5, §7).
const (
	DefaultMaxActive     = 1024
	DefaultUploadTimeout = 15 * time.Second
)

// Server answers MS-PCCRR requests. The zero value is not usable: set
// Source. Route only the retrieval path to it (see MatchPath).
type Server struct {
	Source Source
	// MaxActive is the number of requests served at once; requests over
	// it get empty answers, as a busy Windows peer gives (default 1024).
	MaxActive int
	// UploadTimeout bounds one exchange, reading the request to writing
	// the last byte (default 15 s).
	UploadTimeout time.Duration
	Observer      Observer
	Logger        *slog.Logger

	active  atomic.Int64
	buffers sync.Pool
}

// exchangeBuffers are pooled per request: the request body, the block, the
// MSG_BLK framing around it, and other replies. Replies get their own
// buffer because they alias the request (the echoed segment ID).
type exchangeBuffers struct {
	request [pccrr.MaxRequestSize + 1]byte
	block   [MaxBlockBytes]byte
	framing [512]byte
	reply   [4096]byte
}

// MatchPath reports whether an HTTP path is the retrieval endpoint:
// matched case-insensitively, with or without the trailing slash, as
// http.sys does.
func MatchPath(path string) bool {
	return strings.EqualFold(strings.TrimSuffix(path, "/"), strings.TrimSuffix(pccrr.Path, "/"))
}

func (s *Server) logger() *slog.Logger {
	if s.Logger == nil {
		return slog.Default()
	}
	return s.Logger
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "MS-PCCRR takes POST", http.StatusMethodNotAllowed)
		return
	}
	deadline := time.Now().Add(s.uploadTimeout())
	rc := http.NewResponseController(w)
	// Not every ResponseWriter supports deadlines (httptest's does not);
	// the context deadline still bounds the work.
	_ = rc.SetReadDeadline(deadline)
	_ = rc.SetWriteDeadline(deadline)
	ctx, cancel := context.WithDeadline(r.Context(), deadline)
	defer cancel()

	bufs := s.getBuffers()
	defer s.buffers.Put(bufs)
	n, err := io.ReadFull(r.Body, bufs.request[:])
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
	case err == nil:
		s.drop(w, r, "request larger than MS-PCCRR allows")
		return
	default:
		s.drop(w, r, "reading request: "+err.Error())
		return
	}
	if why := s.exchange(ctx, bufs.request[:n], bufs, httpReply{w}); why != "" {
		s.drop(w, r, why)
	}
}

// httpReply sends a reply through net/http.
type httpReply struct{ w http.ResponseWriter }

func (h httpReply) send(parts ...[]byte) error {
	size := 0
	for _, p := range parts {
		size += len(p)
	}
	h.w.Header().Set("Content-Type", contentType)
	h.w.Header().Set("Content-Length", strconv.Itoa(size))
	h.w.WriteHeader(http.StatusOK)
	for _, p := range parts {
		if _, err := h.w.Write(p); err != nil {
			return err
		}
	}
	return nil
}

// contentType labels every reply: what net/http would sniff from a
// PCCRR message, set outright so that both transports say the same.
const contentType = "application/octet-stream"

// replySender sends one complete MS-PCCRR reply (transport header and
// message), given as consecutive parts, with HTTP status 200.
type replySender interface {
	send(parts ...[]byte) error
}

func (s *Server) uploadTimeout() time.Duration {
	if s.UploadTimeout <= 0 {
		return DefaultUploadTimeout
	}
	return s.UploadTimeout
}

func (s *Server) getBuffers() *exchangeBuffers {
	if bufs, _ := s.buffers.Get().(*exchangeBuffers); bufs != nil {
		return bufs
	}
	return new(exchangeBuffers)
}

// exchange answers one request message through out. For a request that
// must be dropped (malformed, or a response type sent as a request) it
// sends nothing and says why.
func (s *Server) exchange(ctx context.Context, body []byte, bufs *exchangeBuffers, out replySender) (drop string) {
	msg, err := pccrr.ParseRequest(body)
	var versionErr *pccrr.VersionError
	switch {
	case errors.As(err, &versionErr):
		// A major version we do not speak: tell the client what we do
		// speak, and it retries (protocols.md §3.5).
		return s.reply(out, pccrr.NewNegoResp(), bufs)
	case err != nil:
		return err.Error()
	}

	busy := s.active.Add(1) > int64(s.maxActive())
	defer s.active.Add(-1)
	switch req := msg.(type) {
	case *pccrr.NegoReq:
		return s.reply(out, pccrr.NewNegoResp(), bufs)
	case *pccrr.GetBlkList:
		return s.reply(out, s.blockList(ctx, req, busy), bufs)
	case *pccrr.GetBlks:
		return s.serveBlock(ctx, out, req, busy, bufs)
	case *pccrr.GetSegList:
		return s.reply(out, s.segmentList(ctx, req, busy), bufs)
	default:
		return "a response message type sent as a request: " + msg.Type().String()
	}
}

func (s *Server) maxActive() int {
	if s.MaxActive <= 0 {
		return DefaultMaxActive
	}
	return s.MaxActive
}

// drop discards a malformed request the HTTP way: 400, no PCCRR body, and
// the connection closed, since the spec says "silently discard".
func (s *Server) drop(w http.ResponseWriter, r *http.Request, why string) {
	s.logger().Debug("pccrr: dropped malformed request", "remote", r.RemoteAddr, "reason", why)
	w.Header().Set("Connection", "close")
	w.WriteHeader(http.StatusBadRequest)
}

func (s *Server) blockList(ctx context.Context, req *pccrr.GetBlkList, busy bool) *pccrr.BlkList {
	if busy {
		return pccrr.NotFoundBlkList(req)
	}
	state, err := s.Source.Segment(ctx, req.SegmentID)
	if err != nil {
		s.sourceError(err, req.SegmentID)
		return pccrr.NotFoundBlkList(req)
	}
	return pccrr.NewBlkList(req, &state.Held)
}

func (s *Server) segmentList(ctx context.Context, req *pccrr.GetSegList, busy bool) *pccrr.SegList {
	if busy {
		return pccrr.NotFoundSegList(req)
	}
	ages := pccrr.SegmentAges{Units: pccrr.AgeCentiseconds}
	now := time.Now()
	index := 0
	// NewSegList asks about the IDs in request order, so index follows it.
	reply := pccrr.NewSegList(req, func(id []byte) bool {
		i := index
		index++
		state, err := s.Source.Segment(ctx, id)
		if err != nil {
			s.sourceError(err, id)
			return false
		}
		if state.Held.Len() == 0 {
			return false // known (offered) but no block held yet
		}
		// An age's segment index is one byte wide: segments past the
		// 256th of a request go without an age.
		if i <= 255 {
			ages.Ages = append(ages.Ages, pccrr.SegmentAge{Index: uint8(i), Age: ages.Units.Age(now.Sub(state.FirstSeen))})
		}
		return true
	})
	if len(ages.Ages) > 0 && len(ages.Ages) <= 255 {
		if blob, err := ages.Marshal(); err == nil {
			reply.ExtensibleBlob = blob
		}
	}
	return reply
}

func (s *Server) serveBlock(ctx context.Context, out replySender, req *pccrr.GetBlks, busy bool, bufs *exchangeBuffers) (drop string) {
	index, _ := req.FirstBlock()
	if busy {
		return s.reply(out, pccrr.NotFoundBlk(req), bufs)
	}
	if viewer, ok := s.Source.(BlockViewer); ok {
		return s.serveViewed(ctx, out, req, index, viewer, bufs)
	}
	state, err := s.Source.Segment(ctx, req.SegmentID)
	var blk Block
	if err == nil {
		blk, err = s.Source.ReadBlock(ctx, req.SegmentID, index, bufs.block[:])
	}
	if err != nil {
		return s.missed(out, req, index, state.Tag, err, bufs)
	}
	msg := pccrr.NewBlk(req.SegmentID, index, &state.Held, blk.Crypto, blk.Ciphertext, blk.IV)
	head, tail, ok := s.frame(msg, req, index, bufs)
	if !ok {
		return s.reply(out, pccrr.NotFoundBlk(req), bufs)
	}
	if out.send(head, blk.Ciphertext, tail) == nil && s.Observer != nil {
		s.Observer.Served(req.SegmentID, state.Tag, index, len(blk.Ciphertext))
	}
	return ""
}

// missed answers a block the source does not hold (or cannot read) with
// an empty MSG_BLK.
func (s *Server) missed(out replySender, req *pccrr.GetBlks, index uint32, tag string, err error, bufs *exchangeBuffers) (drop string) {
	s.sourceError(err, req.SegmentID)
	if s.Observer != nil {
		s.Observer.Missed(req.SegmentID, tag, index)
	}
	return s.reply(out, pccrr.NotFoundBlk(req), bufs)
}

// frame encodes the MSG_BLK around a block into the framing buffer: what
// goes before the block, and what after it.
func (s *Server) frame(msg *pccrr.Blk, req *pccrr.GetBlks, index uint32, bufs *exchangeBuffers) (head, tail []byte, ok bool) {
	head, err := msg.AppendHead(bufs.framing[:0])
	if err != nil || len(msg.IV) != 16 {
		// A stored block that cannot be framed (a bad length) is a store
		// bug; never send it.
		s.logger().Error("pccrr: stored block cannot be served", "segment", hexID(req.SegmentID), "block", index, "err", err, "iv", len(msg.IV))
		return nil, nil, false
	}
	message := msg.AppendTail(head)
	return head, message[len(head):], true
}

// serveViewed serves a block a BlockViewer lends in place: the block's
// bytes go from where they lie (the page cache, for the store) to the
// socket, framed by head and tail, in one vectored write.
func (s *Server) serveViewed(ctx context.Context, out replySender, req *pccrr.GetBlks, index uint32, viewer BlockViewer, bufs *exchangeBuffers) (drop string) {
	sent, size := false, 0
	blk, err := viewer.ViewBlock(ctx, req.SegmentID, index, bufs.block[:], func(blk OpenedBlock) error {
		msg := pccrr.NewBlk(req.SegmentID, index, &blk.State.Held, blk.Crypto, blk.Ciphertext, blk.IV)
		head, tail, ok := s.frame(msg, req, index, bufs)
		if !ok {
			return errUnframable
		}
		sent, size = true, len(blk.Ciphertext)
		return out.send(head, blk.Ciphertext, tail)
	})
	switch {
	case errors.Is(err, errUnframable):
		return s.reply(out, pccrr.NotFoundBlk(req), bufs)
	case !sent:
		if err == nil {
			err = fmt.Errorf("%w: the source lent no block", ErrNotFound)
		}
		return s.missed(out, req, index, blk.State.Tag, err, bufs)
	case err == nil && s.Observer != nil:
		s.Observer.Served(req.SegmentID, blk.State.Tag, index, size)
	}
	return ""
}

// errUnframable: a stored block that cannot be framed (logged by frame).
var errUnframable = errors.New("pccrr: stored block cannot be framed")

func (s *Server) sourceError(err error, segmentID []byte) {
	if !errors.Is(err, ErrNotFound) && !errors.Is(err, context.Canceled) {
		s.logger().Warn("pccrr: reading the store", "segment", hexID(segmentID), "err", err)
	}
}

// reply sends a complete response message.
func (s *Server) reply(out replySender, m pccrr.Message, bufs *exchangeBuffers) (drop string) {
	msg, err := m.AppendTo(bufs.reply[:0])
	if err != nil {
		// Our own message failed to encode: a bug, never a PCCRR reply.
		s.logger().Error("pccrr: encoding reply", "type", m.Type(), "err", err)
		return "encoding the reply failed"
	}
	out.send(msg)
	return ""
}
