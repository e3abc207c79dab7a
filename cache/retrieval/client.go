package retrieval

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/outpost-appliance/outpost/peerdist/pccrr"
)

// DefaultRequestTimeout bounds one exchange with a peer. Windows' request
// timer is 2 s (protocols.md §3.7); hosted-cache pulls from a busy client
// deserve more, and iPXE allows 3 s to the first byte.
const DefaultRequestTimeout = 10 * time.Second

// Client fetches blocks from MS-PCCRR peers and hosted caches. Its zero
// value works, with a keep-alive HTTP client of its own.
type Client struct {
	// HTTP carries the requests; nil means a shared keep-alive client.
	HTTP *http.Client
	// Timeout bounds each exchange (default DefaultRequestTimeout).
	Timeout time.Duration
	// Crypto is the CryptoAlgoId preference sent in requests; peers may
	// ignore it (default AES-128, as Windows and iPXE send).
	Crypto pccrr.CryptoAlgo
	// HTTPS talks to the hosted cache's HTTPS port (which serves
	// retrieval beside PCHC v1.0); set HTTP's transport TLS config too.
	HTTPS bool
}

// PeerError is a peer's answer that cannot be used: an HTTP error, a
// malformed or mismatched message. Nothing from such an answer is stored.
type PeerError struct {
	Addr   string
	Reason string
}

func (e *PeerError) Error() string { return fmt.Sprintf("retrieval: peer %s: %s", e.Addr, e.Reason) }

var defaultHTTP = &http.Client{Transport: &http.Transport{
	Proxy:               nil, // peers are on the LAN; a proxy would break the subnet rule
	DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
	MaxIdleConnsPerHost: 32, // iPXE keeps up to 32 connections per peer
	IdleConnTimeout:     90 * time.Second,
	DisableCompression:  true,
}}

func (c *Client) httpClient() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return defaultHTTP
}

func (c *Client) crypto() pccrr.CryptoAlgo {
	if c.Crypto == pccrr.CryptoNone {
		return pccrr.CryptoAES128
	}
	return c.Crypto
}

// exchange posts one request to addr ("host:port") and parses the reply.
func (c *Client) exchange(ctx context.Context, addr string, req pccrr.Message) (pccrr.Message, error) {
	body, err := req.Marshal()
	if err != nil {
		return nil, fmt.Errorf("retrieval: encoding %v: %w", req.Type(), err)
	}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = DefaultRequestTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	scheme := "http://"
	if c.HTTPS {
		scheme = "https://"
	}
	httpReq, err := http.NewRequestWithContext(ctx, http.MethodPost, scheme+addr+pccrr.Path, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("retrieval: %w", err)
	}
	resp, err := c.httpClient().Do(httpReq)
	if err != nil {
		return nil, fmt.Errorf("retrieval: %v to %s: %w", req.Type(), addr, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return nil, &PeerError{addr, fmt.Sprintf("HTTP %s to %v", resp.Status, req.Type())}
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, pccrr.TransportHeaderSize+pccrr.MaxResponseSize+1))
	if err != nil {
		return nil, fmt.Errorf("retrieval: reading %v reply from %s: %w", req.Type(), addr, err)
	}
	reply, err := pccrr.ParseResponse(raw)
	if err != nil {
		return nil, &PeerError{addr, fmt.Sprintf("bad reply to %v: %v", req.Type(), err)}
	}
	if nego, ok := reply.(*pccrr.NegoResp); ok && req.Type() != pccrr.MsgNegoReq {
		return nil, &PeerError{addr, fmt.Sprintf("answered %v with MSG_NEGO_RESP (versions %v–%v): no common version", req.Type(), nego.MinVersion, nego.MaxVersion)}
	}
	return reply, nil
}

// GetBlock fetches block index of a segment (block 0 for V2 content). A
// peer that does not hold it gives ErrNotFound; the returned message's
// Block and IV are the peer's bytes, still encrypted.
func (c *Client) GetBlock(ctx context.Context, addr string, segmentID []byte, index uint32) (*pccrr.Blk, error) {
	req := &pccrr.GetBlks{Crypto: c.crypto(), SegmentID: segmentID, Ranges: []pccrr.BlockRange{{Index: index, Count: 1}}}
	reply, err := c.exchange(ctx, addr, req)
	if err != nil {
		return nil, err
	}
	blk, ok := reply.(*pccrr.Blk)
	switch {
	case !ok:
		return nil, &PeerError{addr, fmt.Sprintf("answered MSG_GETBLKS with %v", reply.Type())}
	case !blk.Answers(req):
		return nil, &PeerError{addr, fmt.Sprintf("sent block %d of segment %s for block %d of %s", blk.BlockIndex, hexID(blk.SegmentID), index, hexID(segmentID))}
	case len(blk.Block) == 0:
		return nil, fmt.Errorf("retrieval: %s block %d at %s: %w", hexID(segmentID), index, addr, ErrNotFound)
	case blk.Crypto != pccrr.CryptoNone && len(blk.IV) != 16:
		return nil, &PeerError{addr, fmt.Sprintf("block %d of %s has no IV", index, hexID(segmentID))}
	}
	return blk, nil
}

// GetBlockList asks which blocks of the requested ranges a peer holds.
func (c *Client) GetBlockList(ctx context.Context, addr string, segmentID []byte, ranges []pccrr.BlockRange) (*pccrr.BlkList, error) {
	req := &pccrr.GetBlkList{Crypto: c.crypto(), SegmentID: segmentID, Ranges: ranges}
	reply, err := c.exchange(ctx, addr, req)
	if err != nil {
		return nil, err
	}
	list, ok := reply.(*pccrr.BlkList)
	if !ok || !list.Answers(req) {
		return nil, &PeerError{addr, fmt.Sprintf("answered MSG_GETBLKLIST with %v", reply.Type())}
	}
	return list, nil
}

// GetSegmentList asks which of the segments a hosted cache holds (the
// Windows 8+ hosted-cache client's first question for V2 content). Up to
// 256 IDs fit one request's age index; callers batch larger lists.
func (c *Client) GetSegmentList(ctx context.Context, addr string, segmentIDs [][]byte) (*pccrr.SegList, error) {
	req := &pccrr.GetSegList{Crypto: c.crypto(), SegmentIDs: segmentIDs}
	if err := newRequestID(&req.RequestID); err != nil {
		return nil, err
	}
	reply, err := c.exchange(ctx, addr, req)
	if err != nil {
		return nil, err
	}
	list, ok := reply.(*pccrr.SegList)
	if !ok || !list.Answers(req) {
		return nil, &PeerError{addr, fmt.Sprintf("answered MSG_GETSEGLIST with %v", reply.Type())}
	}
	return list, nil
}

// Negotiate asks a peer for its protocol versions.
func (c *Client) Negotiate(ctx context.Context, addr string) (*pccrr.NegoResp, error) {
	reply, err := c.exchange(ctx, addr, pccrr.NewNegoReq())
	if err != nil {
		return nil, err
	}
	nego, ok := reply.(*pccrr.NegoResp)
	if !ok {
		return nil, &PeerError{addr, fmt.Sprintf("answered MSG_NEGO_REQ with %v", reply.Type())}
	}
	return nego, nil
}

func hexID(id []byte) string {
	if len(id) > 8 {
		return hex.EncodeToString(id[:8]) + "…"
	}
	return hex.EncodeToString(id)
}

// newRequestID fills a GETSEGLIST RequestID: it must be unique among our
// outstanding requests, and random IDs are, without shared state.
func newRequestID(id *[16]byte) error {
	if _, err := rand.Read(id[:]); err != nil {
		return fmt.Errorf("retrieval: request ID: %w", err)
	}
	return nil
}
