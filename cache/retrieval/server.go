// Package retrieval speaks MS-PCCRR, the BranchCache retrieval protocol,
// over HTTP: a Server that answers block requests from any Source of
// stored blocks (the segment store, or a file being offered), and a Client
// that fetches blocks from a peer or hosted cache. Serving never encrypts:
// a Source hands out ciphertext prepared when the block was stored.
package retrieval

import (
	"context"
	"errors"
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

// BlockOpener is implemented by a Source that can hand the server a block
// and its segment's state in one lookup (the segment store). The server
// prefers it to Segment + ReadBlock, and sends the block framed in place
// in one write.
type BlockOpener interface {
	// OpenBlock reads a held block into buf (room for MaxBlockBytes):
	// the IV at buf[:16] and the ciphertext right after it. It returns
	// ErrNotFound for a block not held, with State set if the segment is
	// known.
	OpenBlock(ctx context.Context, segmentID []byte, index uint32, buf []byte) (OpenedBlock, error)
}

// OpenedBlock is a block read by a BlockOpener.
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
	block   [blockHeadroom + MaxBlockBytes + blockTailroom]byte
	framing [512]byte
	reply   [4096]byte
}

// A block read into the exchange buffer lands blockHeadroom bytes in, so
// that the MSG_BLK head fits before it and the tail after it, and the
// whole message goes to the socket in one write.
const (
	blockHeadroom = 256 // > the transport and message headers and the fields before the block
	blockTailroom = 64  // > ZeroPad_2, SizeOfVrfBlock, SizeOfIVBlock and the IV
)

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
	timeout := s.UploadTimeout
	if timeout <= 0 {
		timeout = DefaultUploadTimeout
	}
	deadline := time.Now().Add(timeout)
	rc := http.NewResponseController(w)
	// Not every ResponseWriter supports deadlines (httptest's does not);
	// the context deadline still bounds the work.
	_ = rc.SetReadDeadline(deadline)
	_ = rc.SetWriteDeadline(deadline)
	ctx, cancel := context.WithDeadline(r.Context(), deadline)
	defer cancel()

	bufs, _ := s.buffers.Get().(*exchangeBuffers)
	if bufs == nil {
		bufs = new(exchangeBuffers)
	}
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
	msg, err := pccrr.ParseRequest(bufs.request[:n])
	var versionErr *pccrr.VersionError
	switch {
	case errors.As(err, &versionErr):
		// A major version we do not speak: tell the client what we do
		// speak, and it retries (protocols.md §3.5).
		s.reply(w, pccrr.NewNegoResp(), bufs)
		return
	case err != nil:
		s.drop(w, r, err.Error())
		return
	}

	busy := s.active.Add(1) > int64(s.maxActive())
	defer s.active.Add(-1)
	switch req := msg.(type) {
	case *pccrr.NegoReq:
		s.reply(w, pccrr.NewNegoResp(), bufs)
	case *pccrr.GetBlkList:
		s.reply(w, s.blockList(ctx, req, busy), bufs)
	case *pccrr.GetBlks:
		s.serveBlock(ctx, w, req, busy, bufs)
	case *pccrr.GetSegList:
		s.reply(w, s.segmentList(ctx, req, busy), bufs)
	default:
		s.drop(w, r, "a response message type sent as a request: "+msg.Type().String())
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

func (s *Server) serveBlock(ctx context.Context, w http.ResponseWriter, req *pccrr.GetBlks, busy bool, bufs *exchangeBuffers) {
	index, _ := req.FirstBlock()
	if busy {
		s.reply(w, pccrr.NotFoundBlk(req), bufs)
		return
	}
	if opener, ok := s.Source.(BlockOpener); ok {
		s.serveOpened(ctx, w, req, index, opener, bufs)
		return
	}
	state, err := s.Source.Segment(ctx, req.SegmentID)
	var blk Block
	if err == nil {
		blk, err = s.Source.ReadBlock(ctx, req.SegmentID, index, bufs.block[:])
	}
	if err != nil {
		s.sourceError(err, req.SegmentID)
		if s.Observer != nil {
			s.Observer.Missed(req.SegmentID, state.Tag, index)
		}
		s.reply(w, pccrr.NotFoundBlk(req), bufs)
		return
	}
	s.sendBlock(w, req, index, &state, blk, bufs)
}

// serveOpened serves a block from a BlockOpener: read into the exchange
// buffer blockHeadroom bytes in, framed there, and written at once, so
// that net/http hands the socket one buffer for the whole message rather
// than the head, the block and the tail one after another.
func (s *Server) serveOpened(ctx context.Context, w http.ResponseWriter, req *pccrr.GetBlks, index uint32, opener BlockOpener, bufs *exchangeBuffers) {
	blk, err := opener.OpenBlock(ctx, req.SegmentID, index, bufs.block[blockHeadroom:len(bufs.block)-blockTailroom])
	if err != nil {
		s.sourceError(err, req.SegmentID)
		if s.Observer != nil {
			s.Observer.Missed(req.SegmentID, blk.State.Tag, index)
		}
		s.reply(w, pccrr.NotFoundBlk(req), bufs)
		return
	}
	msg := pccrr.NewBlk(req.SegmentID, index, &blk.State.Held, blk.Crypto, blk.Ciphertext, blk.IV)
	head, err := msg.AppendHead(bufs.framing[:0])
	start := blockHeadroom + len(blk.IV) // where the ciphertext is
	if err != nil || len(head) > start || len(blk.IV) != 16 {
		// A stored block that cannot be framed (a bad length) is a store
		// bug; never send it.
		s.logger().Error("pccrr: stored block cannot be served", "segment", hexID(req.SegmentID), "block", index, "err", err)
		s.reply(w, pccrr.NotFoundBlk(req), bufs)
		return
	}
	message := msg.AppendTail(head) // copies the IV, which the head overwrites next
	tail := message[len(head):]
	end := start + len(blk.Ciphertext)
	copy(bufs.block[start-len(head):], head)
	copy(bufs.block[end:], tail)
	out := bufs.block[start-len(head) : end+len(tail)]
	w.Header().Set("Content-Length", strconv.Itoa(len(out)))
	w.WriteHeader(http.StatusOK)
	if _, err := w.Write(out); err == nil && s.Observer != nil {
		s.Observer.Served(req.SegmentID, blk.State.Tag, index, len(blk.Ciphertext))
	}
}

// sendBlock writes MSG_BLK around a block read by ReadBlock.
func (s *Server) sendBlock(w http.ResponseWriter, req *pccrr.GetBlks, index uint32, state *SegmentState, blk Block, bufs *exchangeBuffers) {
	msg := pccrr.NewBlk(req.SegmentID, index, &state.Held, blk.Crypto, blk.Ciphertext, blk.IV)
	head, err := msg.AppendHead(bufs.framing[:0])
	if err != nil {
		// A stored block that cannot be framed (a bad length) is a store
		// bug; never send it.
		s.logger().Error("pccrr: stored block cannot be served", "segment", hexID(req.SegmentID), "block", index, "err", err)
		s.reply(w, pccrr.NotFoundBlk(req), bufs)
		return
	}
	message := msg.AppendTail(head)
	tail := message[len(head):]
	w.Header().Set("Content-Length", strconv.Itoa(len(head)+len(blk.Ciphertext)+len(tail)))
	w.WriteHeader(http.StatusOK)
	if _, err := w.Write(head); err != nil {
		return
	}
	if _, err := w.Write(blk.Ciphertext); err != nil {
		return
	}
	if _, err := w.Write(tail); err == nil && s.Observer != nil {
		s.Observer.Served(req.SegmentID, state.Tag, index, len(blk.Ciphertext))
	}
}

func (s *Server) sourceError(err error, segmentID []byte) {
	if !errors.Is(err, ErrNotFound) && !errors.Is(err, context.Canceled) {
		s.logger().Warn("pccrr: reading the store", "segment", hexID(segmentID), "err", err)
	}
}

// reply writes a complete response message with its transport header.
func (s *Server) reply(w http.ResponseWriter, m pccrr.Message, bufs *exchangeBuffers) {
	out, err := m.AppendTo(bufs.reply[:0])
	if err != nil {
		s.logger().Error("pccrr: encoding reply", "type", m.Type(), "err", err)
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(out)))
	w.WriteHeader(http.StatusOK)
	w.Write(out)
}
