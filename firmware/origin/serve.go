package origin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/outpost-appliance/outpost/peerdist/pccrc"
	"github.com/outpost-appliance/outpost/peerdist/pccrtp"
)

// varyHeader: a file's response depends on these request headers (peerdist
// or not, V1 or V2), so shared HTTP caches must key on them.
const varyHeader = "Accept-Encoding, X-P2P-PeerDist, X-P2P-PeerDistEx"

// request is what the access log says about one request.
type request struct {
	encoding string // "peerdist" or "" for the content itself
	ci       int    // content information version sent
	reason   string // why the content was sent plainly, or what failed
}

// ServeHTTP serves a file of the directory: its content information when
// the request negotiates peerdist and the content information is ready,
// else the content.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	begin := time.Now()
	lw := &logWriter{ResponseWriter: w}
	var req request
	defer func() { s.accessLog(r, lw, &req, begin) }()

	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		lw.Header().Set("Allow", "GET, HEAD")
		httpError(lw, http.StatusMethodNotAllowed)
		return
	}
	rel, dirForm, err := cleanPath(r.URL.Path)
	var f *os.File
	var st stamp
	if err == nil {
		f, st, rel, err = s.openFile(rel, dirForm)
	}
	if err != nil {
		req.reason = err.Error()
		s.pathError(lw, r, err)
		return
	}
	defer f.Close()

	h := lw.Header()
	etag := st.etag()
	h.Set("ETag", etag)
	h.Set("Last-Modified", st.modTime().UTC().Format(http.TimeFormat))
	h.Set("Accept-Ranges", "bytes")
	h.Set("Vary", varyHeader)
	h.Set("Content-Type", contentType(rel))

	n := s.negotiate(r.Header)
	switch {
	case !n.UsePeerDist:
		req.reason = n.Reason
	case st.Size == 0:
		req.reason = "empty file"
	default:
		v := pccrc.Version(n.ContentInformation)
		e, why := s.contentInfo(r.Context(), rel, st, v)
		if e != nil {
			if s.servePeerDist(lw, r, n, e, etag, &req) {
				return
			}
			break
		}
		req.reason = why
		// As IIS 8 does: the content now, and "ask again" to a client that
		// knows X-P2P-PeerDistEx (protocols.md §6). A 1.0 client gets the
		// content alone, as from Windows Server 2008 R2.
		if n.Version.Compare(pccrtp.Version{Major: 1, Minor: 1}) >= 0 {
			h.Set(pccrtp.HeaderPeerDist, pccrtp.PeerDist{Version: n.Version}.String())
			pccrtp.SetHashesPending(h)
		}
		s.stats.pending.Add(1)
	}
	s.stats.plain.Add(1)
	http.ServeContent(lw, r, rel, st.modTime(), f)
}

// negotiate applies pccrtp.Negotiate and then the versions this server
// offers: a client whose range allows 1.0 gets V1 when V2 is switched off.
func (s *Server) negotiate(h http.Header) pccrtp.Negotiation {
	n := pccrtp.Negotiate(h)
	if !n.UsePeerDist || s.versionEnabled(n.ContentInformation) {
		return n
	}
	if n.ContentInformation == 2 && s.versionEnabled(1) {
		ex, err := pccrtp.ParsePeerDistEx(strings.Join(h.Values(pccrtp.HeaderPeerDistEx), ","))
		if err == nil && ex.MinContentInformation.Compare(pccrtp.Version{Major: 1}) <= 0 {
			n.ContentInformation = 1
			return n
		}
	}
	return pccrtp.Negotiation{Reason: fmt.Sprintf("content information %d.0 is not offered", n.ContentInformation)}
}

// contentInfo returns the content information of rel's version st, or nil
// and the reason to serve the content plainly for now. A miss starts
// hashing; a small settled file is hashed while the request waits.
func (s *Server) contentInfo(ctx context.Context, rel string, st stamp, v pccrc.Version) (*entry, string) {
	k := cacheKey{rel, v}
	if e, err := s.mem.get(k, st); err == nil {
		return e, ""
	}
	s.mu.Lock()
	_, running := s.jobs[k]
	s.mu.Unlock()
	if !running {
		if e, err := s.lookup(k, st); err == nil {
			return e, ""
		}
	}
	inline := s.opts.InlineHashLimit > 0 && st.Size <= s.opts.InlineHashLimit &&
		st.settleWait(time.Now(), s.opts.MinFileAge) == 0
	j := s.startJob(k, inline)
	if !inline || !j.inline {
		return nil, "content information not ready (hashing)"
	}
	wait, cancel := context.WithTimeout(ctx, inlineWait)
	defer cancel()
	select {
	case <-j.done:
	case <-wait.Done():
		return nil, "content information not ready (hashing takes long)"
	}
	if j.err != nil {
		return nil, "hashing failed: " + j.err.Error()
	}
	if j.entry.stamp != st {
		return nil, "the file changed while it was hashed"
	}
	return j.entry, ""
}

// servePeerDist answers with content information: for the whole file
// (200), or for one satisfiable byte range (206 with Content-Range, as
// IIS does; protocols.md §6). It returns false, having written nothing,
// when the request must get the content instead: several ranges, or a
// range that cannot be met (http.ServeContent then answers 206 multipart
// or 416).
func (s *Server) servePeerDist(w http.ResponseWriter, r *http.Request, n pccrtp.Negotiation, e *entry, etag string, req *request) bool {
	size := e.stamp.Size
	status, rangeHeader := preconditions(r, etag, e.stamp.modTime())
	if status != 0 {
		h := w.Header()
		h.Del("Content-Type")
		if status == http.StatusNotModified {
			h.Del("Last-Modified")
		}
		w.WriteHeader(status)
		req.reason = "precondition"
		return true
	}
	body, code, identity := e.raw, http.StatusOK, size
	if rangeHeader != "" {
		ranges, err := parseRange(rangeHeader, size)
		if err != nil || len(ranges) != 1 {
			req.reason = "content information cannot describe this range request"
			return false
		}
		ra := ranges[0]
		if body, err = e.forRange(ra.start, ra.length); err != nil {
			req.reason = "content information of the range: " + err.Error()
			return false
		}
		code, identity = http.StatusPartialContent, ra.length
		w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", ra.start, ra.start+ra.length-1, size))
	}
	h := w.Header()
	n.SetResponseHeaders(h, identity)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(code)
	if r.Method != http.MethodHead {
		w.Write(body)
	}
	req.encoding, req.ci = pccrtp.EncodingPeerDist, int(e.version)
	s.stats.peerDist.Add(1)
	return true
}

// contentType is the MIME type of a file by its extension, else
// application/octet-stream: the content is never sniffed, and the same
// type goes with the content and with its content information.
func contentType(rel string) string {
	if t := mime.TypeByExtension(path.Ext(rel)); t != "" {
		return t
	}
	return "application/octet-stream"
}

// pathError answers a request whose path cannot be served.
func (s *Server) pathError(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, errIsDir):
		// Built from the cleaned path: "//host" from the request must not
		// become a redirect to another site.
		rel, _, _ := cleanPath(r.URL.Path)
		target := (&url.URL{Path: "/" + rel + "/"}).EscapedPath()
		if r.URL.RawQuery != "" {
			target += "?" + r.URL.RawQuery
		}
		http.Redirect(w, r, target, http.StatusMovedPermanently)
	case errors.Is(err, errBadPath):
		httpError(w, http.StatusBadRequest)
	case errors.Is(err, errForbidden):
		httpError(w, http.StatusForbidden)
	case errors.Is(err, errNotFound), errors.Is(err, errHidden):
		httpError(w, http.StatusNotFound)
	default:
		s.log.Warn("origin: open", "path", r.URL.Path, "err", err)
		httpError(w, http.StatusInternalServerError)
	}
}

func httpError(w http.ResponseWriter, code int) {
	http.Error(w, strconv.Itoa(code)+" "+http.StatusText(code), code)
}

// accessLog writes one line per request.
func (s *Server) accessLog(r *http.Request, w *logWriter, req *request, begin time.Time) {
	status := w.status
	if status == 0 {
		status = http.StatusOK
	}
	attrs := []any{
		"remote", r.RemoteAddr, "method", r.Method, "path", r.URL.Path, "status", status,
		"bytes", w.bytes, "ms", float64(time.Since(begin).Microseconds()) / 1000,
	}
	if req.encoding != "" {
		attrs = append(attrs, "encoding", req.encoding, "ci", req.ci)
	}
	if rg := r.Header.Get("Range"); rg != "" {
		attrs = append(attrs, "range", rg)
	}
	if pd := r.Header.Get(pccrtp.HeaderPeerDist); pd != "" {
		attrs = append(attrs, "peerdist", pd)
	}
	if req.reason != "" {
		attrs = append(attrs, "reason", req.reason)
	}
	s.log.Log(r.Context(), s.opts.AccessLogLevel, "origin: request", attrs...)
}

// logWriter records the status and the body bytes of a response. It keeps
// the sendfile path of http.ServeContent (ReadFrom) and lets
// http.ResponseController reach the connection (Unwrap).
type logWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *logWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *logWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(p)
	w.bytes += int64(n)
	return n, err
}

func (w *logWriter) ReadFrom(src io.Reader) (int64, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	var n int64
	var err error
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(src)
	} else {
		n, err = io.Copy(struct{ io.Writer }{w.ResponseWriter}, src)
	}
	w.bytes += n
	return n, err
}

func (w *logWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
