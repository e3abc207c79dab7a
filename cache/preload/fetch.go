package preload

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/outpost-appliance/outpost/cache/preload/bandwidth"
	"github.com/outpost-appliance/outpost/peerdist/pccrc"
	"github.com/outpost-appliance/outpost/peerdist/pccrtp"
)

// Errors that decide what happens to a job after a failed attempt.
var (
	// ErrNotBranchCache: the origin answered a PeerDist request with the
	// content itself.
	ErrNotBranchCache = errors.New("the origin answered with the content itself, not content information: BranchCache is not enabled for this URL on the server (IIS: the BranchCache feature, enabled for the site; a BITS server; `outpost origin`), or the server has not hashed the file yet")
	// ErrHashesPending: the origin is hashing the content
	// (MakeHashRequest); ask again later.
	ErrHashesPending = errors.New("the origin is still computing the content information (MakeHashRequest); asking again later")
	// errChanged: the content changed since its content information was
	// fetched (another ETag or size); fetch it again.
	errChanged = errors.New("the content changed on the origin")
	// errStalled: no byte arrived for stallTimeout.
	errStalled = errors.New("the origin sent nothing for too long")
)

// PermanentError is a failure that retrying cannot mend (404, a refused
// request, content information that is not usable).
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

func permanent(format string, args ...any) error {
	return &PermanentError{Err: fmt.Errorf(format, args...)}
}

// Limits on what an origin may send.
const (
	// maxContentInformation bounds a content-information body: V1 of a
	// 512 GiB file (32 bytes per 64 KiB block); real files need far less.
	maxContentInformation = 256 << 20
	stallTimeout          = 60 * time.Second
)

// newTransport is the HTTP client of the WAN fetches. HTTP/2 is off: its
// flow-control windows let a server send megabytes ahead of what the
// token bucket lets through, while HTTP/1.1 leaves pacing to TCP, whose
// receive window follows the rate the bytes are read at. Compression is
// off: hashes are over the identity bytes and ranges must be exact.
func newTransport() *http.Transport {
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   15 * time.Second,
		ResponseHeaderTimeout: 2 * time.Minute,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConnsPerHost:   4,
		DisableCompression:    true,
		ForceAttemptHTTP2:     false,
		TLSNextProto:          map[string]func(string, *tls.Conn) http.RoundTripper{},
	}
}

// origin fetches from one URL through the job's limiters.
type origin struct {
	client    *http.Client
	url       string
	userAgent string
	limiters  []*bandwidth.Limiter
	// fetched counts the bytes read from the origin (WAN bytes).
	fetched func(n int)
}

// ciAnswer is a content-information response.
type ciAnswer struct {
	info *pccrc.Info
	size uint64 // the content's identity length
	// validator is the ETag (strong) or Last-Modified that ranges are
	// fetched under (If-Range).
	etag, lastModified string
}

// validator is what If-Range carries: a strong ETag, else Last-Modified.
func (a ciAnswer) validator() string {
	if a.etag != "" && !strings.HasPrefix(a.etag, "W/") {
		return a.etag
	}
	return a.lastModified
}

// requestFor is the PeerDist request a Windows client of that content
// version sends: Windows 7 (V1) sends Version=1.0 and no PeerDistEx;
// Windows 8 and later send Version=1.1 and the range of versions they
// read, here just the one wanted.
func requestFor(v pccrc.Version, hashRequest bool) pccrtp.ClientRequest {
	if v == pccrc.V1 {
		return pccrtp.ClientRequest{Version: pccrtp.Version{Major: 1, Minor: 0}}
	}
	return pccrtp.ClientRequest{
		Version:               pccrtp.Version{Major: 1, Minor: 1},
		MinContentInformation: pccrtp.Version{Major: 2, Minor: 0},
		MaxContentInformation: pccrtp.Version{Major: 2, Minor: 0},
		HashRequest:           hashRequest,
	}
}

func (o *origin) newRequest(ctx context.Context) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, o.url, nil)
	if err != nil {
		return nil, permanent("%v", err)
	}
	req.Header.Set("User-Agent", o.userAgent)
	return req, nil
}

// contentInformation asks the origin for the content information of
// version v.
func (o *origin) contentInformation(ctx context.Context, v pccrc.Version, hashRequest bool) (ciAnswer, error) {
	req, err := o.newRequest(ctx)
	if err != nil {
		return ciAnswer{}, err
	}
	requestFor(v, hashRequest).SetHeaders(req.Header)
	resp, err := o.client.Do(req)
	if err != nil {
		return ciAnswer{}, fmt.Errorf("content information V%d: %w", v, err)
	}
	defer resp.Body.Close()
	if err := statusError(resp); err != nil {
		return ciAnswer{}, fmt.Errorf("content information V%d: %w", v, err)
	}
	pd, err := pccrtp.ParseResponseHeaders(resp.Header)
	if err != nil {
		return ciAnswer{}, permanent("content information V%d: %v", v, err)
	}
	if !pd.PeerDist {
		// Never read the content itself: closing the body drops the
		// connection, so the WAN carries no more of it.
		if pd.MakeHashRequest {
			return ciAnswer{}, ErrHashesPending
		}
		if v == pccrc.V2 {
			return ciAnswer{}, fmt.Errorf("%w; if the server is Windows Server 2008 R2 (content information 1.0 only), set versions = [1]", ErrNotBranchCache)
		}
		return ciAnswer{}, ErrNotBranchCache
	}
	if resp.StatusCode != http.StatusOK {
		return ciAnswer{}, permanent("content information V%d: status %s for a peerdist answer", v, resp.Status)
	}
	if resp.ContentLength > maxContentInformation {
		return ciAnswer{}, permanent("content information V%d of %d bytes is larger than any real file needs", v, resp.ContentLength)
	}
	body, err := io.ReadAll(io.LimitReader(o.limited(ctx, resp.Body), maxContentInformation+1))
	if err != nil {
		return ciAnswer{}, fmt.Errorf("content information V%d: %w", v, err)
	}
	if len(body) > maxContentInformation {
		return ciAnswer{}, permanent("content information V%d is larger than any real file needs", v)
	}
	info, err := pccrc.Parse(body)
	if err != nil {
		return ciAnswer{}, permanent("content information V%d from the origin: %v", v, err)
	}
	if info.Version != v {
		return ciAnswer{}, permanent("asked for content information V%d, the origin sent V%d", v, info.Version)
	}
	size := uint64(pd.ContentLength)
	if err := checkWhole(info, size); err != nil {
		return ciAnswer{}, permanent("content information V%d from the origin: %v", v, err)
	}
	return ciAnswer{info: info, size: size, etag: resp.Header.Get("ETag"), lastModified: resp.Header.Get("Last-Modified")}, nil
}

// statusError classifies a status that is not a success: client errors
// are permanent (the URL is wrong or refused), except timeouts and rate
// limiting; server errors are retried.
func statusError(resp *http.Response) error {
	switch code := resp.StatusCode; {
	case code >= 200 && code < 300:
		return nil
	case code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code >= 500:
		return fmt.Errorf("the origin answered %s", resp.Status)
	default:
		return permanent("the origin answered %s", resp.Status)
	}
}

// openRange asks for bytes [start, end) of content the answer describes,
// under its validator, and returns the body and whether it is the whole
// content (the origin ignores Range: 200) rather than the range (206).
func (o *origin) openRange(ctx context.Context, ans ciAnswer, start, end uint64) (body io.ReadCloser, whole bool, err error) {
	req, err := o.newRequest(ctx)
	if err != nil {
		return nil, false, err
	}
	// No peerdist: this asks for the bytes. identity: the exact bytes.
	req.Header.Set("Accept-Encoding", "identity")
	req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", start, end-1))
	if v := ans.validator(); v != "" {
		req.Header.Set("If-Range", v)
	}
	resp, err := o.client.Do(req)
	if err != nil {
		return nil, false, err
	}
	fail := func(err error) (io.ReadCloser, bool, error) {
		resp.Body.Close()
		return nil, false, err
	}
	if ce := resp.Header.Get("Content-Encoding"); ce != "" && !strings.EqualFold(ce, "identity") {
		return fail(permanent("the origin sent the bytes with Content-Encoding %q although identity was asked for", ce))
	}
	switch resp.StatusCode {
	case http.StatusPartialContent:
		first, last, total, err := parseContentRange(resp.Header.Get("Content-Range"))
		switch {
		case err != nil:
			return fail(fmt.Errorf("range %d-%d: %w", start, end-1, err))
		case total >= 0 && uint64(total) != ans.size:
			return fail(errChanged)
		case first != start || last != end-1:
			return fail(fmt.Errorf("asked for bytes %d-%d, the origin sent %d-%d", start, end-1, first, last))
		}
		return o.body(ctx, resp), false, nil
	case http.StatusOK:
		// The validator no longer matches (the content changed), or the
		// origin ignores Range.
		if et := resp.Header.Get("ETag"); (ans.etag != "" && et != ans.etag) || (resp.ContentLength >= 0 && uint64(resp.ContentLength) != ans.size) {
			return fail(errChanged)
		}
		return o.body(ctx, resp), true, nil
	case http.StatusRequestedRangeNotSatisfiable:
		return fail(errChanged)
	}
	return fail(statusError(resp))
}

// body wraps a response body: limited, counted, and cut when it stalls.
func (o *origin) body(ctx context.Context, resp *http.Response) io.ReadCloser {
	return &watchedBody{ReadCloser: resp.Body, r: o.limited(ctx, resp.Body)}
}

// limited reads r through the limiters, counting what arrives.
func (o *origin) limited(ctx context.Context, r io.Reader) io.Reader {
	return bandwidth.Reader(ctx, countingReader{r: r, count: o.fetched}, o.limiters...)
}

type countingReader struct {
	r     io.Reader
	count func(int)
}

func (c countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if n > 0 && c.count != nil {
		c.count(n)
	}
	return n, err
}

// watchedBody closes the body when no byte arrives for stallTimeout, so
// a stalled origin fails the attempt instead of hanging it.
type watchedBody struct {
	io.ReadCloser
	r       io.Reader
	timer   *time.Timer
	stalled atomic.Bool
}

func (b *watchedBody) Read(p []byte) (int, error) {
	if b.timer == nil {
		b.timer = time.AfterFunc(stallTimeout, func() {
			b.stalled.Store(true)
			b.ReadCloser.Close()
		})
	} else {
		b.timer.Reset(stallTimeout)
	}
	n, err := b.r.Read(p)
	b.timer.Stop()
	if err != nil && b.stalled.Load() {
		err = errStalled
	}
	return n, err
}

func (b *watchedBody) Close() error {
	if b.timer != nil {
		b.timer.Stop()
	}
	return b.ReadCloser.Close()
}

// parseContentRange reads "bytes first-last/total" ("*" total is -1).
func parseContentRange(s string) (first, last uint64, total int64, err error) {
	bad := fmt.Errorf("malformed Content-Range %q", s)
	rest, ok := strings.CutPrefix(strings.TrimSpace(s), "bytes ")
	if !ok {
		return 0, 0, 0, bad
	}
	span, size, ok := strings.Cut(rest, "/")
	if !ok {
		return 0, 0, 0, bad
	}
	a, b, ok := strings.Cut(span, "-")
	if !ok {
		return 0, 0, 0, bad
	}
	if first, err = strconv.ParseUint(a, 10, 64); err != nil {
		return 0, 0, 0, bad
	}
	if last, err = strconv.ParseUint(b, 10, 64); err != nil || last < first {
		return 0, 0, 0, bad
	}
	total = -1
	if size != "*" {
		if total, err = strconv.ParseInt(size, 10, 64); err != nil || total <= int64(last) {
			return 0, 0, 0, bad
		}
	}
	return first, last, total, nil
}
