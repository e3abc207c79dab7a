// Package hostedcache speaks MS-PCHC, the hosted-cache offer protocol,
// over HTTP(S): the server side that takes Windows clients' offers and has
// the offered segments pulled into the store, and a client that sends
// offers as a Windows client does.
package hostedcache

import (
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/outpost-appliance/outpost/peerdist/pchc"
)

// OfferClient sends offers to a hosted cache, as a Windows client in
// hosted-cache mode does: PCHC v1.0 over HTTPS (Windows 7) or v2.0 over
// HTTP (Windows 8 and later).
type OfferClient struct {
	// Addr is the hosted cache, "host:port".
	Addr string
	// HTTPS sends over TLS (Windows 7 clients; the v1.0 URL).
	HTTPS bool
	// TLS configures the HTTPS connection; nil verifies against the
	// system roots. See PinnedTLS for checking a thumbprint instead.
	TLS *tls.Config
	// Timeout bounds one offer exchange. A Windows client gives up after
	// roughly 10–15 s (protocols.md §4.3); default 15 s.
	Timeout time.Duration

	client *http.Client
}

// PinnedTLS accepts exactly the certificate whose SHA-1 thumbprint (the
// hex string `netsh branchcache` and the certificate store show, spaces
// allowed) is given, which is how admins identify a hosted cache's
// certificate; an empty thumbprint accepts any certificate (--insecure).
func PinnedTLS(thumbprint string) (*tls.Config, error) {
	want := strings.ToLower(strings.ReplaceAll(strings.ReplaceAll(thumbprint, " ", ""), ":", ""))
	if want != "" {
		if b, err := hex.DecodeString(want); err != nil || len(b) != sha1.Size {
			return nil, fmt.Errorf("hostedcache: thumbprint %q is not 40 hex digits", thumbprint)
		}
	}
	return &tls.Config{
		InsecureSkipVerify: true, // replaced by the thumbprint check below
		VerifyConnection: func(cs tls.ConnectionState) error {
			if want == "" {
				return nil
			}
			if len(cs.PeerCertificates) == 0 {
				return fmt.Errorf("hostedcache: no certificate")
			}
			sum := sha1.Sum(cs.PeerCertificates[0].Raw)
			if got := hex.EncodeToString(sum[:]); got != want {
				return fmt.Errorf("hostedcache: certificate thumbprint %s, want %s", got, want)
			}
			return nil
		},
	}, nil
}

func (c *OfferClient) httpClient() *http.Client {
	if c.client == nil {
		c.client = &http.Client{Transport: &http.Transport{
			TLSClientConfig:    c.TLS,
			DisableCompression: true,
			ForceAttemptHTTP2:  false, // Windows' http.sys talk: HTTP/1.1
		}}
	}
	return c.client
}

// Send posts one offer and returns the hosted cache's answer. The URL path
// follows the message's version: v1.0 messages to the v1 path, v2.0 to the
// v2 path, as Windows clients do.
func (c *OfferClient) Send(ctx context.Context, msg pchc.Message) (pchc.ResponseCode, error) {
	body, err := msg.Marshal()
	if err != nil {
		return 0, fmt.Errorf("hostedcache: encoding %v: %w", msg.Type(), err)
	}
	path := pchc.PathV2
	if msg.Type() != pchc.TypeBatchedOffer {
		path = pchc.PathV1
	}
	scheme := "http"
	if c.HTTPS {
		scheme = "https"
	}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = 15 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, scheme+"://"+c.Addr+path, bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("hostedcache: %w", err)
	}
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return 0, fmt.Errorf("hostedcache: %v to %s: %w", msg.Type(), c.Addr, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64))
	if err != nil {
		return 0, fmt.Errorf("hostedcache: reading the answer to %v: %w", msg.Type(), err)
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("hostedcache: %v to %s: HTTP %s", msg.Type(), c.Addr, resp.Status)
	}
	answer, err := pchc.ParseResponse(raw)
	if err != nil {
		return 0, fmt.Errorf("hostedcache: answer to %v from %s: %w", msg.Type(), c.Addr, err)
	}
	return answer.Code, nil
}
