package retrieval

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/outpost-appliance/outpost/peerdist/pccrr"
)

// HTTP1Server serves a retrieval port (1337, and 1339 with the hosted
// cache's offers) with an HTTP/1.1 loop of its own for the one request
// that matters for speed: a POST of an MS-PCCRR message to the retrieval
// path, with a Content-Length, over HTTP/1.1. It reads such a request and
// its body straight from the connection's buffer and writes the reply —
// HTTP head, message head, block, message tail — in one vectored write,
// where net/http spends as much again per request on its own machinery
// (a background read per request, header maps, per-request contexts and
// timers, a buffered copy of the reply).
//
// Every request it does not take — another path or method, HTTP/1.0,
// a chunked body, Expect, a bare-LF or oversized head, anything odd —
// goes with all bytes read so far and the rest of its connection to
// Fallback, a net/http server, which answers it as it would have on its
// own. So the loop only has to be right for the plain case, and every
// other case is net/http's.
type HTTP1Server struct {
	// Retrieval answers the MS-PCCRR exchanges (its MaxActive and
	// UploadTimeout apply: one exchange, from the request's first byte
	// to the reply's last, is bounded by UploadTimeout).
	Retrieval *Server
	// Fallback serves what the loop hands over, with its own handler
	// and timeouts; its Addr is ignored. Required.
	Fallback *http.Server
	// IdleTimeout closes a keep-alive connection with no request for
	// this long (default 2 minutes).
	IdleTimeout time.Duration
	Logger      *slog.Logger

	start     sync.Once
	ctx       context.Context // ends with Close
	cancel    context.CancelFunc
	handoff   *handoffListener
	closing   atomic.Bool
	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*http1Conn]struct{}
	date      atomic.Pointer[dateStamp]
}

// DefaultIdleTimeout is how long a keep-alive connection may wait for its
// next request.
const DefaultIdleTimeout = 2 * time.Minute

// headBufferSize bounds a request head the loop takes itself; a longer
// one goes to Fallback (whose limit is 1 MiB).
const headBufferSize = 4096

func (h *HTTP1Server) init() {
	h.start.Do(func() {
		h.ctx, h.cancel = context.WithCancel(context.Background())
		h.handoff = &handoffListener{conns: make(chan net.Conn), done: make(chan struct{})}
		h.listeners = map[net.Listener]struct{}{}
		h.conns = map[*http1Conn]struct{}{}
		go func() {
			if err := h.Fallback.Serve(h.handoff); err != nil && !errors.Is(err, http.ErrServerClosed) {
				h.logger().Warn("pccrr: fallback HTTP server stopped", "err", err)
			}
		}()
	})
}

func (h *HTTP1Server) logger() *slog.Logger {
	if h.Logger == nil {
		return slog.Default()
	}
	return h.Logger
}

// Serve accepts connections on ln until Shutdown or Close, and returns
// http.ErrServerClosed then.
func (h *HTTP1Server) Serve(ln net.Listener) error {
	h.init()
	h.mu.Lock()
	if h.closing.Load() {
		h.mu.Unlock()
		ln.Close()
		return http.ErrServerClosed
	}
	h.listeners[ln] = struct{}{}
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		delete(h.listeners, ln)
		h.mu.Unlock()
	}()
	backoff := 5 * time.Millisecond
	for {
		nc, err := ln.Accept()
		switch {
		case err == nil:
			backoff = 5 * time.Millisecond
			h.serveConn(nc)
		case h.closing.Load():
			return http.ErrServerClosed
		case isTemporaryAcceptError(err):
			// Out of file descriptors or memory: wait and try again, as
			// net/http does, rather than give the port up.
			h.logger().Warn("pccrr: accept", "err", err, "retry_in", backoff)
			time.Sleep(backoff)
			backoff = min(2*backoff, time.Second)
		default:
			return err
		}
	}
}

func isTemporaryAcceptError(err error) bool {
	for _, errno := range []syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM, syscall.ECONNABORTED} {
		if errors.Is(err, errno) {
			return true
		}
	}
	return false
}

// Shutdown stops accepting, closes idle connections, lets exchanges in
// flight finish (their replies say Connection: close), then shuts
// Fallback down; it gives up when ctx ends.
func (h *HTTP1Server) Shutdown(ctx context.Context) error {
	h.init()
	h.stopListening()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !h.closeIdle() {
		select {
		case <-ctx.Done():
			h.Fallback.Shutdown(ctx)
			return ctx.Err()
		case <-tick.C:
		}
	}
	return h.Fallback.Shutdown(ctx)
}

// Close closes the listeners and every connection at once.
func (h *HTTP1Server) Close() error {
	h.init()
	h.stopListening()
	h.cancel()
	h.mu.Lock()
	for c := range h.conns {
		c.nc.Close()
	}
	h.mu.Unlock()
	return h.Fallback.Close()
}

func (h *HTTP1Server) stopListening() {
	h.closing.Store(true)
	h.mu.Lock()
	defer h.mu.Unlock()
	for ln := range h.listeners {
		ln.Close()
	}
}

// closeIdle closes connections waiting for a request and reports whether
// none is left.
func (h *HTTP1Server) closeIdle() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for c := range h.conns {
		if c.state.CompareAndSwap(connIdle, connClosing) {
			c.nc.Close()
		}
	}
	return len(h.conns) == 0
}

// Connection states, for Shutdown.
const (
	connIdle    int32 = iota // waiting for a request
	connActive               // in an exchange
	connClosing              // closed by Shutdown while idle
)

// http1Conn is one connection served by the loop.
type http1Conn struct {
	srv   *HTTP1Server
	nc    net.Conn
	br    *bufio.Reader
	state atomic.Int32
	// The reply being written: the HTTP head and the vector of parts.
	head      [192]byte
	iov       [8][]byte
	closeNext bool            // say Connection: close and close after this reply
	raw       syscall.RawConn // for writev; nil where the connection has no descriptor
	writeErr  error
}

func (h *HTTP1Server) serveConn(nc net.Conn) {
	c := &http1Conn{srv: h, nc: nc}
	h.mu.Lock()
	if h.closing.Load() {
		h.mu.Unlock()
		nc.Close()
		return
	}
	h.conns[c] = struct{}{}
	h.mu.Unlock()
	go c.serve()
}

func (h *HTTP1Server) forget(c *http1Conn) {
	h.mu.Lock()
	delete(h.conns, c)
	h.mu.Unlock()
}

func (h *HTTP1Server) idleTimeout() time.Duration {
	if h.IdleTimeout <= 0 {
		return DefaultIdleTimeout
	}
	return h.IdleTimeout
}

func (c *http1Conn) serve() {
	h := c.srv
	handedOff := false
	defer func() {
		h.forget(c)
		if !handedOff {
			c.nc.Close()
		}
	}()
	if sc, ok := c.nc.(syscall.Conn); ok {
		c.raw, _ = sc.SyscallConn()
	}
	if c.raw != nil {
		c.br = bufio.NewReaderSize(rawReader{c.raw}, headBufferSize)
	} else {
		c.br = bufio.NewReaderSize(c.nc, headBufferSize)
	}
	for {
		c.nc.SetReadDeadline(time.Now().Add(h.idleTimeout()))
		if _, err := c.br.Peek(1); err != nil {
			return
		}
		if !c.state.CompareAndSwap(connIdle, connActive) {
			return // Shutdown closed it
		}
		c.nc.SetDeadline(time.Now().Add(h.Retrieval.uploadTimeout()))
		head, headLen, ok := c.readHead()
		if !ok {
			if headLen < 0 {
				return // the connection failed or timed out mid-head
			}
			handedOff = true
			h.forget(c)
			c.handOff()
			return
		}
		c.br.Discard(headLen)
		c.closeNext = head.close
		if !c.exchange(head.contentLength) {
			return
		}
		if c.closeNext {
			c.closeGracefully()
			return
		}
		c.state.Store(connIdle)
		if h.closing.Load() && c.state.CompareAndSwap(connIdle, connClosing) {
			return
		}
	}
}

// exchange reads a request body and answers it; it reports whether the
// connection may carry on.
func (c *http1Conn) exchange(contentLength int) bool {
	srv := c.srv.Retrieval
	bufs := srv.getBuffers()
	defer srv.buffers.Put(bufs)
	body := bufs.request[:contentLength]
	if _, err := io.ReadFull(c.br, body); err != nil {
		return false
	}
	c.writeErr = nil
	if why := srv.exchange(c.srv.ctx, body, bufs, c); why != "" {
		srv.logger().Debug("pccrr: dropped malformed request", "remote", c.nc.RemoteAddr().String(), "reason", why)
		c.writeDrop()
		c.closeGracefully()
		return false
	}
	return c.writeErr == nil
}

// send implements replySender: the HTTP head and the parts, one writev.
func (c *http1Conn) send(parts ...[]byte) error {
	size := 0
	for _, p := range parts {
		size += len(p)
	}
	head := append(c.head[:0], "HTTP/1.1 200 OK\r\nContent-Type: "+contentType+"\r\nContent-Length: "...)
	head = strconv.AppendInt(head, int64(size), 10)
	head = append(head, "\r\nDate: "...)
	head = append(head, c.srv.httpDate()...)
	c.closeNext = c.closeNext || c.srv.closing.Load()
	if c.closeNext {
		head = append(head, "\r\nConnection: close"...)
	}
	head = append(head, "\r\n\r\n"...)
	iov := append(c.iov[:0], head)
	iov = append(iov, parts...)
	if c.raw != nil && len(iov) <= maxIovecs {
		c.writeErr = c.writev(iov)
	} else {
		bufs := net.Buffers(iov)
		_, c.writeErr = bufs.WriteTo(c.nc)
	}
	clear(c.iov[:]) // do not keep the block (a view of the store) reachable
	return c.writeErr
}

// rawReader reads a connection with read(2) made as a raw system call
// (see writev for why), waiting for data through the poller as Go's own
// reads do (try, and on EAGAIN wait until readable), which also applies
// the connection's read deadline and wakes it when the connection is
// closed.
type rawReader struct{ raw syscall.RawConn }

func (r rawReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	var n uintptr
	var errno syscall.Errno
	err := r.raw.Read(func(fd uintptr) bool {
		for errno = syscall.EINTR; errno == syscall.EINTR; {
			n, _, errno = syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
		}
		return errno != syscall.EAGAIN // else wait until readable
	})
	switch {
	case err != nil:
		return 0, err
	case errno != 0:
		return 0, os.NewSyscallError("read", errno)
	case n == 0:
		return 0, io.EOF
	}
	return int(n), nil
}

// maxIovecs bounds the parts of a reply writev takes at once.
const maxIovecs = 8

// writev writes bufs whole with writev(2) made as a raw system call,
// waiting for the socket through the poller when it is full. Go's own
// reads and writes enter the scheduler's system-call state; a 64 KiB
// write on a small box outlasts the 20 µs after which the runtime's
// monitor hands the P to another thread, and while that keeps happening
// the monitor wakes every 20 µs to look: futex wakes, context switches
// and a sleep call 50 000 times a second, measured at a fifth of the
// serving process's CPU. The socket is non-blocking, so the raw call
// never waits; it only copies, as any computation of that length would,
// and the monitor sleeps.
func (c *http1Conn) writev(bufs [][]byte) error {
	var iov [maxIovecs]syscall.Iovec
	for {
		count := 0
		for _, b := range bufs {
			if len(b) > 0 {
				iov[count].Base = &b[0]
				iov[count].SetLen(len(b))
				count++
			}
		}
		if count == 0 {
			return nil
		}
		var written uintptr
		var errno syscall.Errno
		err := c.raw.Write(func(fd uintptr) bool {
			for errno = syscall.EINTR; errno == syscall.EINTR; {
				written, _, errno = syscall.RawSyscall(syscall.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&iov[0])), uintptr(count))
			}
			return errno != syscall.EAGAIN // else wait until writable
		})
		switch {
		case err != nil:
			return err
		case errno != 0:
			return &net.OpError{Op: "writev", Net: "tcp", Source: c.nc.LocalAddr(), Addr: c.nc.RemoteAddr(), Err: os.NewSyscallError("writev", errno)}
		}
		for n := int(written); n > 0 && len(bufs) > 0; {
			step := min(n, len(bufs[0]))
			bufs[0], n = bufs[0][step:], n-step
			if len(bufs[0]) == 0 {
				bufs = bufs[1:]
			}
		}
	}
}

// writeDrop answers a malformed request as net/http does for the
// handler's drop: 400, no body, Connection: close.
func (c *http1Conn) writeDrop() {
	head := append(c.head[:0], "HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\nDate: "...)
	head = append(head, c.srv.httpDate()...)
	head = append(head, "\r\n\r\n"...)
	c.nc.Write(head)
}

// closeGracefully half-closes and waits briefly for the client to close,
// so that unread request bytes do not turn the close into a reset that
// destroys the reply in flight (as net/http does).
func (c *http1Conn) closeGracefully() {
	if cw, ok := c.nc.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
		c.nc.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		io.Copy(io.Discard, io.LimitReader(c.nc, 256<<10))
	}
}

// readHead waits until the buffer holds a whole request head and parses
// it. ok false with headLen ≥ 0 means: not for the loop, hand it over;
// headLen < 0: the connection failed.
func (c *http1Conn) readHead() (head requestHead, headLen int, ok bool) {
	scanned := 0
	for {
		data, _ := c.br.Peek(c.br.Buffered())
		end, verdict := findHeadEnd(data, scanned)
		switch verdict {
		case headComplete:
			head, ok = parseHead(data[:end])
			return head, end, ok
		case headOdd:
			return head, 0, false
		}
		if len(data) == c.br.Size() {
			return head, 0, false // too long for the loop
		}
		scanned = max(0, len(data)-3)
		if _, err := c.br.Peek(len(data) + 1); err != nil {
			if len(data) > 0 && errors.Is(err, bufio.ErrBufferFull) {
				return head, 0, false
			}
			return head, -1, false
		}
	}
}

// handOff gives the connection, with everything read from it so far, to
// Fallback.
func (c *http1Conn) handOff() {
	c.nc.SetDeadline(time.Time{})
	pending, _ := c.br.Peek(c.br.Buffered())
	c.srv.handoff.give(&prefixConn{Conn: c.nc, pending: bytes.Clone(pending)})
}

// requestHead is what the loop needs of a request head.
type requestHead struct {
	contentLength int
	close         bool
}

// Results of findHeadEnd.
const (
	headIncomplete = iota
	headComplete
	headOdd // bare LF line ends or a leading empty line: net/http's call
)

// findHeadEnd looks for the empty line that ends a request head in data,
// scanning from offset from (a line start or a few bytes before the
// previous end of data); end is the length of the head with that line.
func findHeadEnd(data []byte, from int) (end int, verdict int) {
	for i := from; i < len(data); i++ {
		if data[i] != '\n' {
			continue
		}
		if i == 0 || data[i-1] != '\r' {
			return 0, headOdd
		}
		if i == 1 {
			return 0, headOdd // an empty line before the request line
		}
		if i >= 3 && data[i-2] == '\n' && data[i-3] == '\r' {
			return i + 1, headComplete
		}
	}
	return 0, headIncomplete
}

// parseHead parses a complete request head (ending with the empty line)
// and reports whether the loop takes the request: POST of the retrieval
// path in origin form without query, HTTP/1.1, one Host, at most one
// Content-Length of at most MaxRequestSize, no Transfer-Encoding, Expect
// or Upgrade, and only well-formed header lines. Anything else is left
// to net/http, which knows every rule.
func parseHead(data []byte) (head requestHead, ok bool) {
	line, rest, _ := bytes.Cut(data, []byte("\r\n"))
	target, found := bytes.CutPrefix(line, []byte("POST "))
	if !found {
		return head, false
	}
	target, found = bytes.CutSuffix(target, []byte(" HTTP/1.1"))
	if !found || len(target) == 0 || target[0] != '/' || bytes.ContainsAny(target, "?#% \t") || !MatchPath(string(target)) {
		return head, false
	}
	hosts, lengths := 0, 0
	for {
		line, rest, _ = bytes.Cut(rest, []byte("\r\n"))
		if len(line) == 0 {
			break
		}
		name, value, found := bytes.Cut(line, []byte(":"))
		if !found || !validToken(name) || !validValue(value) {
			return head, false
		}
		value = bytes.Trim(value, " \t")
		switch {
		case asciiEqualFold(name, "Host"):
			hosts++
			if !validHost(value) {
				return head, false
			}
		case asciiEqualFold(name, "Content-Length"):
			lengths++
			n, err := strconv.Atoi(string(value))
			if err != nil || n < 0 || n > pccrr.MaxRequestSize || len(value) == 0 || value[0] < '0' || value[0] > '9' {
				return head, false
			}
			head.contentLength = n
		case asciiEqualFold(name, "Connection"):
			for token := range bytes.SplitSeq(value, []byte(",")) {
				switch token = bytes.Trim(token, " \t"); {
				case asciiEqualFold(token, "close"):
					head.close = true
				case asciiEqualFold(token, "upgrade"):
					return head, false
				}
			}
		case asciiEqualFold(name, "Transfer-Encoding"), asciiEqualFold(name, "Expect"), asciiEqualFold(name, "Upgrade"):
			return head, false
		}
	}
	return head, hosts == 1 && lengths <= 1
}

func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range b {
		x, y := b[i]|0x20, s[i]|0x20
		if x != y || (x < 'a' || x > 'z') && b[i] != s[i] {
			return false
		}
	}
	return true
}

// validToken: an RFC 9110 token (a header name).
func validToken(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, ch := range b {
		if !isAlnum(ch) && strings.IndexByte("!#$%&'*+-.^_`|~", ch) < 0 {
			return false
		}
	}
	return true
}

// validValue: a header value without control characters but HTAB.
func validValue(b []byte) bool {
	for _, ch := range b {
		if ch < ' ' && ch != '\t' || ch == 0x7f {
			return false
		}
	}
	return true
}

// validHost: the characters net/http allows in a Host header (a host,
// an IP literal in brackets, a port).
func validHost(b []byte) bool {
	for _, ch := range b {
		if !isAlnum(ch) && strings.IndexByte("!$&'()*+,-.:;=[]_~%", ch) < 0 {
			return false
		}
	}
	return true
}

func isAlnum(ch byte) bool {
	return 'a' <= ch && ch <= 'z' || 'A' <= ch && ch <= 'Z' || '0' <= ch && ch <= '9'
}

// dateStamp is the Date header's text for one second.
type dateStamp struct {
	unix int64
	text []byte
}

// httpDate is the Date header's value, formatted once a second.
func (h *HTTP1Server) httpDate() []byte {
	now := time.Now()
	if d := h.date.Load(); d != nil && d.unix == now.Unix() {
		return d.text
	}
	d := &dateStamp{unix: now.Unix(), text: now.UTC().AppendFormat(nil, http.TimeFormat)}
	h.date.Store(d)
	return d.text
}

// handoffListener is the listener Fallback serves: the connections the
// loop hands over.
type handoffListener struct {
	conns     chan net.Conn
	done      chan struct{}
	closeOnce sync.Once
}

func (l *handoffListener) give(c net.Conn) {
	select {
	case l.conns <- c:
	case <-l.done:
		c.Close()
	}
}

func (l *handoffListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *handoffListener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return nil
}

func (l *handoffListener) Addr() net.Addr { return handoffAddr{} }

type handoffAddr struct{}

func (handoffAddr) Network() string { return "handoff" }
func (handoffAddr) String() string  { return "handoff" }

// prefixConn is a handed-over connection: the bytes the loop had read
// come first.
type prefixConn struct {
	net.Conn
	pending []byte
}

func (p *prefixConn) Read(b []byte) (int, error) {
	if len(p.pending) > 0 {
		n := copy(b, p.pending)
		p.pending = p.pending[n:]
		return n, nil
	}
	return p.Conn.Read(b)
}

// CloseWrite lets net/http half-close a handed-over TCP connection as it
// does its own.
func (p *prefixConn) CloseWrite() error {
	if cw, ok := p.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
