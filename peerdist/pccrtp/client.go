package pccrtp

import (
	"fmt"
	"net/http"
	"strings"
)

// ClientRequest describes the headers a client sends to ask an origin for
// content information instead of the content.
type ClientRequest struct {
	// Version is the PeerDist version: 1.0 (Vista/7) or 1.1 (Windows 8+).
	Version Version
	// MinContentInformation and MaxContentInformation go in
	// X-P2P-PeerDistEx; a 1.1 client must send them.
	MinContentInformation Version
	MaxContentInformation Version
	// HashRequest asks again after a MakeHashRequest answer.
	HashRequest bool
}

// IPXERequest is what iPXE's PeerDist client sends (protocols.md §10):
// Version 1.1 and content information 1.0 to 2.0.
func IPXERequest() ClientRequest {
	return ClientRequest{
		Version:               version11(),
		MinContentInformation: Version{Major: 1, Minor: 0},
		MaxContentInformation: Version{Major: 2, Minor: 0},
	}
}

// SetHeaders sets Accept-Encoding: peerdist (replacing other codings, so
// the server cannot pick a different one), X-P2P-PeerDist, and
// X-P2P-PeerDistEx when it has anything to say.
func (r ClientRequest) SetHeaders(h http.Header) {
	h.Set("Accept-Encoding", EncodingPeerDist)
	h.Set(HeaderPeerDist, PeerDist{Version: r.Version}.String())
	ex := PeerDistEx{
		MinContentInformation: r.MinContentInformation,
		MaxContentInformation: r.MaxContentInformation,
		HashRequest:           r.HashRequest,
	}.String()
	if ex == "" {
		h.Del(HeaderPeerDistEx)
		return
	}
	h.Set(HeaderPeerDistEx, ex)
}

// SetMissingDataRequest turns h into a request for actual bytes after peers
// failed (normally with a Range header): X-P2P-PeerDist: Version=v,
// MissingDataRequest=true, no X-P2P-PeerDistEx, and no Accept-Encoding, so
// peerdist is not offered.
func SetMissingDataRequest(h http.Header, v Version) {
	h.Del("Accept-Encoding")
	h.Del(HeaderPeerDistEx)
	h.Set(HeaderPeerDist, PeerDist{Version: v, MissingDataRequest: true}.String())
}

// ServerResponse is what a client learns from an origin's response headers.
type ServerResponse struct {
	// PeerDist: the body is content information, not the content.
	PeerDist bool
	// Version is the server's PeerDist version (zero if it sent none).
	Version Version
	// ContentLength is the identity length of the content; set whenever
	// PeerDist is.
	ContentLength int64
	// MakeHashRequest: the server has no content information yet and sent
	// the content; ask again later with HashRequest=true.
	MakeHashRequest bool
}

// ParseResponseHeaders reads an origin's response headers. A peerdist
// response must carry peerdist as its only content coding and an
// X-P2P-PeerDist header with Version and ContentLength; anything less is
// an error, since the client could not use the body. On a plain response
// the PeerDist headers are hints and are ignored when malformed.
func ParseResponseHeaders(h http.Header) (ServerResponse, error) {
	var r ServerResponse
	pd, pdErr := ParsePeerDist(strings.Join(h.Values(HeaderPeerDist), ","))
	if pdErr == nil {
		r.Version = pd.Version
	}
	if ex, err := ParsePeerDistEx(strings.Join(h.Values(HeaderPeerDistEx), ",")); err == nil {
		r.MakeHashRequest = ex.MakeHashRequest
	}
	codings, isPeerDist := contentCodings(h)
	if !isPeerDist {
		return r, nil
	}
	switch {
	case codings != 1:
		return ServerResponse{}, fmt.Errorf("pccrtp: response: %w", malformed("peerdist combined with other content codings"))
	case pdErr != nil:
		return ServerResponse{}, fmt.Errorf("pccrtp: response: %w", pdErr)
	case !pd.HasContentLength:
		return ServerResponse{}, fmt.Errorf("pccrtp: response: %w", malformed("%s without ContentLength", HeaderPeerDist))
	}
	r.PeerDist, r.ContentLength = true, pd.ContentLength
	return r, nil
}

// contentCodings counts the codings in Content-Encoding and reports whether
// peerdist is among them.
func contentCodings(h http.Header) (count int, peerdist bool) {
	for _, line := range h.Values("Content-Encoding") {
		for coding := range strings.SplitSeq(line, ",") {
			coding = trimOWS(coding)
			if coding == "" {
				continue
			}
			count++
			if strings.EqualFold(coding, EncodingPeerDist) {
				peerdist = true
			}
		}
	}
	return count, peerdist
}
