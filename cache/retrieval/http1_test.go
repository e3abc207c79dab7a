package retrieval

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/outpost-appliance/outpost/peerdist/pccrr"
	"github.com/outpost-appliance/outpost/peerdist/vectors"
)

// http1Fixture runs an HTTP1Server over srv on loopback; fallback counts
// the requests the loop handed over (and serves them with srv, or with
// other for paths that are not retrieval's).
type http1Fixture struct {
	addr     string
	server   *HTTP1Server
	handed   atomic.Int64
	serveErr chan error
}

func startHTTP1(t *testing.T, srv *Server, idle time.Duration) *http1Fixture {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &http1Fixture{addr: ln.Addr().String(), serveErr: make(chan error, 1)}
	fallback := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.handed.Add(1)
		if !MatchPath(r.URL.Path) {
			w.Header().Set("X-Fallback", r.URL.Path)
			w.WriteHeader(http.StatusTeapot)
			return
		}
		srv.ServeHTTP(w, r)
	})
	f.server = &HTTP1Server{Retrieval: srv, Fallback: &http.Server{Handler: fallback}, IdleTimeout: idle}
	go func() { f.serveErr <- f.server.Serve(ln) }()
	t.Cleanup(func() { f.server.Close() })
	return f
}

func (f *http1Fixture) dial(t *testing.T) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return c, bufio.NewReader(c)
}

// rawPost is the request Windows sends: POST, Host, Content-Length.
func rawPost(body []byte, extra string) string {
	return "POST " + pccrr.Path + " HTTP/1.1\r\nHost: 10.0.0.1:1337\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n" + extra + "\r\n" + string(body)
}

func readResponse(t *testing.T, r *bufio.Reader) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.ReadResponse(r, nil)
	for err == nil && resp.StatusCode == http.StatusContinue {
		resp, err = http.ReadResponse(r, nil)
	}
	if err != nil {
		t.Fatalf("reading the response: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading the response body: %v", err)
	}
	return resp, body
}

// Over the loop, every request gets what the net/http handler gives it:
// same status, same body, same Connection; and none is handed over.
func TestHTTP1MatchesHandler(t *testing.T) {
	derived := func(name string) []byte { return vectors.Read(t, "peerdist-vectors", "derived", name) }
	src := newMemSource()
	id := vectors.Hex(t, v1SegmentID)
	for _, i := range []uint32{0, 1, 3} {
		src.put(id, i, Block{Crypto: pccrr.CryptoAES256, Ciphertext: bytes.Repeat([]byte{byte(i + 1)}, 65552), IV: bytes.Repeat([]byte{0xA0 + byte(i)}, 16)}, time.Now())
	}
	src.put(vectors.Hex(t, v2SegmentA), 0, Block{Crypto: pccrr.CryptoAES256, Ciphertext: make([]byte, 32), IV: make([]byte, 16)}, time.Now())
	getblks := derived("pccrr_getblks_v1seg_blk0.bin")
	patch := func(off int, b ...byte) []byte { out := bytes.Clone(getblks); copy(out[off:], b); return out }
	block := func(index uint32) []byte {
		body, _ := (&pccrr.GetBlks{Crypto: pccrr.CryptoAES128, SegmentID: id, Ranges: []pccrr.BlockRange{{Index: index, Count: 1}}}).Marshal()
		return body
	}
	requests := []struct {
		name string
		body []byte
	}{
		{"negotiate", derived("pccrr_nego_req_1.0-2.0.bin")},
		{"block list", derived("pccrr_getblklist_v1seg_all.bin")},
		{"block 0", block(0)},
		{"block 3, the last", block(3)},
		{"block 2, not held", block(2)},
		{"segment list", derived("pccrr_getseglist_v2_both.bin")},
		{"version 3.0", patch(0, 0, 0, 0, 3)},
		{"empty", nil},
		{"truncated", getblks[:40]},
		{"unknown type", patch(4, 0, 0, 0, 9)},
		{"response type", patch(4, 0, 0, 0, 5)},
		{"size mismatch", patch(8, 0, 0, 0, 0x50)},
	}
	sources := []struct {
		name   string
		source Source
	}{
		{"ReadBlock", src},
		{"BlockViewer", &viewerSource{memSource: src}},
	}
	for _, s := range sources {
		t.Run(s.name, func(t *testing.T) {
			srv := &Server{Source: s.source}
			f := startHTTP1(t, srv, 0)
			for _, rq := range requests {
				want := post(t, &Server{Source: src}, rq.body)
				c, r := f.dial(t)
				io.WriteString(c, rawPost(rq.body, ""))
				resp, body := readResponse(t, r)
				// (ReadResponse turns Connection: close into Close.)
				if wantClose := want.Header().Get("Connection") == "close"; resp.StatusCode != want.Code || resp.Close != wantClose {
					t.Errorf("%s: HTTP %d close %v, want %d %v", rq.name, resp.StatusCode, resp.Close, want.Code, wantClose)
				}
				if rq.name == "segment list" { // ages move with the clock
					continue
				}
				if !bytes.Equal(body, want.Body.Bytes()) {
					t.Errorf("%s: body differs (%d bytes, want %d)", rq.name, len(body), want.Body.Len())
				}
				if resp.StatusCode == http.StatusOK && (resp.Header.Get("Content-Type") != contentType || resp.ContentLength != int64(len(body))) {
					t.Errorf("%s: Content-Type %q, Content-Length %d for %d bytes", rq.name, resp.Header.Get("Content-Type"), resp.ContentLength, len(body))
				}
				if _, err := time.Parse(http.TimeFormat, resp.Header.Get("Date")); err != nil {
					t.Errorf("%s: Date %q: %v", rq.name, resp.Header.Get("Date"), err)
				}
				if resp.StatusCode == http.StatusBadRequest {
					if n, err := r.Read(make([]byte, 1)); n != 0 || err == nil {
						t.Errorf("%s: the connection stayed open after a drop", rq.name)
					}
				}
			}
			if n := f.handed.Load(); n != 0 {
				t.Errorf("%d requests were handed to net/http", n)
			}
		})
	}
}

// What the loop does not take goes to net/http, with the bytes already
// read, and the connection carries on there.
func TestHTTP1HandsOver(t *testing.T) {
	src := newMemSource()
	id := vectors.Hex(t, v1SegmentID)
	src.put(id, 0, Block{Crypto: pccrr.CryptoAES256, Ciphertext: bytes.Repeat([]byte{7}, 4096), IV: make([]byte, 16)}, time.Now())
	body, _ := (&pccrr.GetBlks{Crypto: pccrr.CryptoAES128, SegmentID: id, Ranges: []pccrr.BlockRange{{Index: 0, Count: 1}}}).Marshal()
	want := post(t, &Server{Source: src}, body).Body.Bytes()
	chunked := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n", pccrr.Path, len(body), body)
	for _, tc := range []struct {
		name    string
		request string
		status  int
		block   bool // the reply is the block
	}{
		{"GET", "GET " + pccrr.Path + " HTTP/1.1\r\nHost: h\r\n\r\n", http.StatusMethodNotAllowed, false},
		{"another path", "POST /0131501b-d67f-491b-9a40-c4bf27bcb4d4/ HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n", http.StatusTeapot, false},
		{"HTTP/1.0", "POST " + pccrr.Path + " HTTP/1.0\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + string(body), http.StatusOK, true},
		{"chunked body", chunked, http.StatusOK, true},
		{"Expect: 100-continue", rawPost(body, "Expect: 100-continue\r\n"), http.StatusOK, true},
		{"query string", "POST " + pccrr.Path + "?x=1 HTTP/1.1\r\nHost: h\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + string(body), http.StatusOK, true},
		// net/http unescapes it to the retrieval path.
		{"escaped path", "POST /116B50EB-ECE2-41ac-8429-9F9E963361B7%2F HTTP/1.1\r\nHost: h\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + string(body), http.StatusOK, true},
		{"bare LF", "POST " + pccrr.Path + " HTTP/1.1\nHost: h\nContent-Length: " + strconv.Itoa(len(body)) + "\n\n" + string(body), http.StatusOK, true},
		{"head over 4 KiB", rawPost(body, "X-Padding: "+strings.Repeat("p", 5000)+"\r\n"), http.StatusOK, true},
		{"no Host", "POST " + pccrr.Path + " HTTP/1.1\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + string(body), http.StatusBadRequest, false},
		{"two Content-Lengths", rawPost(body, "Content-Length: 7\r\n"), http.StatusBadRequest, false},
		{"body over the PCCRR limit", "POST " + pccrr.Path + " HTTP/1.1\r\nHost: h\r\nContent-Length: 100000\r\n\r\n" + strings.Repeat("x", 100000), http.StatusBadRequest, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := startHTTP1(t, &Server{Source: src}, 0)
			c, r := f.dial(t)
			// The request and a plain one after it, in one write: the
			// second must be answered too (by net/http, which now has the
			// connection), unless the first closed it.
			io.WriteString(c, tc.request+rawPost(body, ""))
			resp, got := readResponse(t, r)
			if resp.StatusCode != tc.status || tc.block && !bytes.Equal(got, want) {
				t.Fatalf("HTTP %d with %d bytes; want %d (block %v)", resp.StatusCode, len(got), tc.status, tc.block)
			}
			if f.handed.Load() == 0 && tc.status != http.StatusBadRequest {
				t.Error("the loop answered it itself")
			}
			if resp.Close {
				return
			}
			resp, got = readResponse(t, r)
			if resp.StatusCode != http.StatusOK || !bytes.Equal(got, want) {
				t.Errorf("the request after it: HTTP %d with %d bytes", resp.StatusCode, len(got))
			}
		})
	}
}

// One connection carries many exchanges, sequential or pipelined; a
// client's Connection: close is honoured.
func TestHTTP1KeepAlive(t *testing.T) {
	src := newMemSource()
	id := vectors.Hex(t, v1SegmentID)
	for i := range uint32(8) {
		src.put(id, i, Block{Crypto: pccrr.CryptoAES256, Ciphertext: bytes.Repeat([]byte{byte(i)}, 65552), IV: make([]byte, 16)}, time.Now())
	}
	bodies := make([][]byte, 8)
	for i := range bodies {
		bodies[i], _ = (&pccrr.GetBlks{Crypto: pccrr.CryptoAES128, SegmentID: id, Ranges: []pccrr.BlockRange{{Index: uint32(i), Count: 1}}}).Marshal()
	}
	check := func(t *testing.T, r *bufio.Reader, index int) *http.Response {
		t.Helper()
		resp, got := readResponse(t, r)
		reply, err := pccrr.ParseResponse(got)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("block %d: HTTP %d, %v", index, resp.StatusCode, err)
		}
		if blk := reply.(*pccrr.Blk); blk.BlockIndex != uint32(index) || len(blk.Block) != 65552 || blk.Block[100] != byte(index) {
			t.Fatalf("block %d: got block %d of %d bytes", index, blk.BlockIndex, len(blk.Block))
		}
		return resp
	}
	for _, source := range []Source{src, &viewerSource{memSource: src}} {
		f := startHTTP1(t, &Server{Source: source}, 0)
		c, r := f.dial(t)
		for i := range 100 {
			io.WriteString(c, rawPost(bodies[i%8], ""))
			check(t, r, i%8)
		}
		var pipelined strings.Builder
		for i := range 16 {
			pipelined.WriteString(rawPost(bodies[i%8], "Connection: keep-alive\r\n"))
		}
		io.WriteString(c, pipelined.String())
		for i := range 16 {
			check(t, r, i%8)
		}
		io.WriteString(c, rawPost(bodies[5], "Connection: close\r\n"))
		if resp := check(t, r, 5); !resp.Close {
			t.Error("Connection: close was not answered in kind")
		}
		if n, err := r.Read(make([]byte, 1)); n != 0 || err == nil {
			t.Error("the connection stayed open after Connection: close")
		}
		if n := f.handed.Load(); n != 0 {
			t.Errorf("%d requests were handed to net/http", n)
		}
	}
}

// An idle connection is closed after IdleTimeout; a request that stalls
// mid-head or mid-body, after UploadTimeout.
func TestHTTP1Timeouts(t *testing.T) {
	src := newMemSource()
	body, _ := (&pccrr.GetBlks{SegmentID: vectors.Hex(t, v1SegmentID), Ranges: []pccrr.BlockRange{{Index: 0, Count: 1}}}).Marshal()
	full := rawPost(body, "")
	for _, tc := range []struct {
		name string
		sent string
	}{
		{"idle", ""},
		{"mid-head", full[:20]},
		{"mid-body", full[:len(full)-10]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := startHTTP1(t, &Server{Source: src, UploadTimeout: 300 * time.Millisecond}, 300*time.Millisecond)
			c, r := f.dial(t)
			io.WriteString(c, full)
			readResponse(t, r) // one exchange first: the connection is kept
			io.WriteString(c, tc.sent)
			start := time.Now()
			if n, err := r.Read(make([]byte, 1)); n != 0 || !errors.Is(err, io.EOF) {
				t.Fatalf("read %d bytes, %v; want the server to close", n, err)
			}
			if waited := time.Since(start); waited < 200*time.Millisecond {
				t.Errorf("closed after %v, before the timeout", waited)
			}
		})
	}
}

// blockingSource holds every ReadBlock until released.
type blockingSource struct {
	*memSource
	entered chan struct{}
	release chan struct{}
}

func (b *blockingSource) ReadBlock(ctx context.Context, id []byte, index uint32, buf []byte) (Block, error) {
	b.entered <- struct{}{}
	<-b.release
	return b.memSource.ReadBlock(ctx, id, index, buf)
}

// Shutdown closes idle connections at once, lets an exchange in flight
// finish (saying Connection: close), and then Serve returns
// http.ErrServerClosed.
func TestHTTP1Shutdown(t *testing.T) {
	src := newMemSource()
	id := vectors.Hex(t, v1SegmentID)
	src.put(id, 0, Block{Crypto: pccrr.CryptoAES256, Ciphertext: make([]byte, 65552), IV: make([]byte, 16)}, time.Now())
	blocking := &blockingSource{memSource: src, entered: make(chan struct{}, 1), release: make(chan struct{})}
	f := startHTTP1(t, &Server{Source: blocking}, 0)
	body, _ := (&pccrr.GetBlks{SegmentID: id, Ranges: []pccrr.BlockRange{{Index: 0, Count: 1}}}).Marshal()

	idle, idleReader := f.dial(t)
	io.WriteString(idle, rawPost([]byte{1}, "")) // dropped at once: still proves the loop runs
	readResponse(t, idleReader)
	idle2, idle2Reader := f.dial(t)
	_ = idle2
	busy, busyReader := f.dial(t)
	io.WriteString(busy, rawPost(body, ""))
	<-blocking.entered

	done := make(chan error, 1)
	go func() { done <- f.server.Shutdown(context.Background()) }()
	if n, err := idle2Reader.Read(make([]byte, 1)); n != 0 || err == nil {
		t.Error("an idle connection was not closed")
	}
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned %v with an exchange in flight", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(blocking.release)
	resp, got := readResponse(t, busyReader)
	if resp.StatusCode != http.StatusOK || len(got) < 65552 || !resp.Close {
		t.Errorf("the exchange in flight: HTTP %d, %d bytes, close %v", resp.StatusCode, len(got), resp.Close)
	}
	if err := <-done; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if err := <-f.serveErr; !errors.Is(err, http.ErrServerClosed) {
		t.Errorf("Serve returned %v", err)
	}
	if _, err := net.Dial("tcp", f.addr); err == nil {
		t.Error("still accepting after Shutdown")
	}
}

// Many clients at once, each with a few exchanges (run with -race).
func TestHTTP1Concurrent(t *testing.T) {
	src := newMemSource()
	id := vectors.Hex(t, v1SegmentID)
	for i := range uint32(4) {
		src.put(id, i, Block{Crypto: pccrr.CryptoAES256, Ciphertext: bytes.Repeat([]byte{byte(i)}, 65552), IV: make([]byte, 16)}, time.Now())
	}
	f := startHTTP1(t, &Server{Source: &viewerSource{memSource: src}}, 0)
	var wg sync.WaitGroup
	for client := range 200 {
		wg.Go(func() {
			c, err := net.Dial("tcp", f.addr)
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			r := bufio.NewReader(c)
			for i := range 5 {
				index := uint32((client + i) % 4)
				body, _ := (&pccrr.GetBlks{SegmentID: id, Ranges: []pccrr.BlockRange{{Index: index, Count: 1}}}).Marshal()
				io.WriteString(c, rawPost(body, ""))
				resp, err := http.ReadResponse(r, nil)
				if err != nil {
					t.Error(err)
					return
				}
				got, _ := io.ReadAll(resp.Body)
				reply, err := pccrr.ParseResponse(got)
				if err != nil || reply.(*pccrr.Blk).BlockIndex != index || reply.(*pccrr.Blk).Block[0] != byte(index) {
					t.Errorf("client %d: wrong reply for block %d: %v", client, index, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// The loop takes a head only where net/http reads the same request from
// it: POST of the retrieval path, the same Content-Length, the same
// Connection: close. Seeds are what Windows, iPXE and the MS test suite
// send, and odd heads.
func FuzzParseHead(f *testing.F) {
	for _, seed := range []string{
		"POST /116B50EB-ECE2-41ac-8429-9F9E963361B7/ HTTP/1.1\r\nConnection: Keep-Alive\r\nContent-Length: 80\r\nHost: 10.1.2.3:1337\r\nUser-Agent: Microsoft-Windows-BranchCache/6.3\r\n\r\n",
		"POST /116B50EB-ECE2-41ac-8429-9F9E963361B7/ HTTP/1.1\r\nUser-Agent: iPXE/1.21.1\r\nHost: 10.0.0.5:1337\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 96\r\n\r\n",
		"POST /116b50eb-ece2-41ac-8429-9f9e963361b7 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
		"POST /116B50EB-ECE2-41ac-8429-9F9E963361B7/ HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
		"POST /116B50EB-ECE2-41ac-8429-9F9E963361B7/ HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\n",
		"POST /116B50EB-ECE2-41ac-8429-9F9E963361B7/ HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n",
		"POST /116B50EB-ECE2-41ac-8429-9F9E963361B7/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
		"POST http://x/116B50EB-ECE2-41ac-8429-9F9E963361B7/ HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		end, verdict := findHeadEnd(data, 0)
		if verdict != headComplete {
			return
		}
		head, ok := parseHead(data[:end])
		if !ok {
			return
		}
		req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(data[:end])))
		if err != nil {
			t.Fatalf("the loop takes a head net/http rejects (%v):\n%q", err, data[:end])
		}
		if req.Method != http.MethodPost || !MatchPath(req.URL.Path) || req.ContentLength != int64(head.contentLength) || req.Close != head.close || len(req.TransferEncoding) > 0 {
			t.Fatalf("the loop reads %+v, net/http %s %s length %d close %v:\n%q", head, req.Method, req.URL.Path, req.ContentLength, req.Close, data[:end])
		}
	})
}
