package pccrtp

import (
	"net/http"
	"strings"
)

// PeerDist protocol versions a server answers with: Windows answers 1.1
// only to 1.1 clients and 1.0 otherwise (MS-PCCRTP <2><3>).
func version10() Version { return Version{Major: 1, Minor: 0} }
func version11() Version { return Version{Major: 1, Minor: 1} }

// Content information versions this package negotiates, best first.
func supportedContentInformation() [2]Version {
	return [2]Version{{Major: 2, Minor: 0}, {Major: 1, Minor: 0}}
}

// Negotiation is an origin server's decision for one request.
type Negotiation struct {
	// UsePeerDist: answer with Content-Encoding: peerdist and content
	// information as the body. Otherwise serve the content as usual.
	UsePeerDist bool
	// ContentInformation is the PCCRC major version to send, 1 or 2
	// (0 when not UsePeerDist).
	ContentInformation int
	// Version is the PeerDist version for the response's X-P2P-PeerDist:
	// 1.0 for 1.0 clients, 1.1 for any later 1.x client.
	Version Version
	// HashRequest: the client is asking again after a MakeHashRequest
	// answer, so the server should have started generating hashes.
	HashRequest bool
	// Reason says why the plain encoding was chosen, for logs.
	Reason string
}

// Negotiate decides, from a request's headers, whether to answer with the
// peerdist encoding and which content information version to send
// (protocols.md §6):
//
//   - no or unparseable X-P2P-PeerDist, or a Version whose major is not 1:
//     plain (the conformance suite sends "Version=999.999" and expects the
//     plain content); later 1.x minors are answered as 1.1;
//   - MissingDataRequest=true: plain, the client wants the actual bytes
//     (=false is honoured as absent, any other value makes the header
//     unparseable, both as the conformance suite expects);
//   - peerdist not acceptable in Accept-Encoding: plain;
//   - no X-P2P-PeerDistEx, or a 1.0 client (which predates it and content
//     information 2.0): version 1;
//   - otherwise the highest supported version (2.0, then 1.0) inside
//     [MinContentInformation, MaxContentInformation]; an unparseable
//     header, a missing bound, min > max, or no supported version inside
//     the range: plain.
//
// The caller still has to apply the rules that need the response: only
// GET, only entities with an ETag or Last-Modified, and only when the
// content information exists (else serve plain with SetHashesPending).
func Negotiate(h http.Header) Negotiation {
	pdValues := h.Values(HeaderPeerDist)
	if len(pdValues) == 0 {
		return plain("no " + HeaderPeerDist + " header")
	}
	pd, err := ParsePeerDist(strings.Join(pdValues, ","))
	if err != nil {
		return plain(err.Error())
	}
	if pd.Version.Major != 1 {
		return plain("unsupported PeerDist version " + pd.Version.String())
	}
	if pd.MissingDataRequest {
		return plain("missing-data request")
	}
	if !AcceptsPeerDist(strings.Join(h.Values("Accept-Encoding"), ",")) {
		return plain("peerdist not acceptable in Accept-Encoding")
	}
	n := Negotiation{UsePeerDist: true, ContentInformation: 1, Version: version10()}
	if pd.Version.Compare(version11()) >= 0 {
		n.Version = version11()
	}
	exValues := h.Values(HeaderPeerDistEx)
	if len(exValues) == 0 || n.Version == version10() {
		return n
	}
	ex, err := ParsePeerDistEx(strings.Join(exValues, ","))
	if err != nil {
		return plain(err.Error())
	}
	n.HashRequest = ex.HashRequest
	lo, hi := ex.MinContentInformation, ex.MaxContentInformation
	if lo.IsZero() || hi.IsZero() || lo.Compare(hi) > 0 {
		return plain("invalid content information range " + lo.String() + "-" + hi.String())
	}
	for _, v := range supportedContentInformation() {
		if lo.Compare(v) <= 0 && v.Compare(hi) <= 0 {
			n.ContentInformation = v.Major
			return n
		}
	}
	return plain("no supported content information version in " + lo.String() + "-" + hi.String())
}

func plain(reason string) Negotiation { return Negotiation{Reason: reason} }

// ResponsePeerDist is the X-P2P-PeerDist value of a peerdist response:
// the negotiated Version and the entity's identity length.
func (n Negotiation) ResponsePeerDist(identityLength int64) PeerDist {
	return PeerDist{Version: n.Version, ContentLength: identityLength, HasContentLength: true}
}

// SetResponseHeaders sets Content-Encoding: peerdist and X-P2P-PeerDist on a
// peerdist response. The caller sets Content-Length to the size of the
// content information it sends as the body. It does nothing unless
// n.UsePeerDist.
func (n Negotiation) SetResponseHeaders(h http.Header, identityLength int64) {
	if !n.UsePeerDist {
		return
	}
	h.Set("Content-Encoding", EncodingPeerDist)
	h.Set(HeaderPeerDist, n.ResponsePeerDist(identityLength).String())
}

// SetHashesPending marks a plain response to a peerdist request whose
// content information is not ready yet ("X-P2P-PeerDistEx:
// MakeHashRequest=true", as IIS 8 does): the client will ask again later
// with HashRequest=true.
func SetHashesPending(h http.Header) {
	h.Set(HeaderPeerDistEx, PeerDistEx{MakeHashRequest: true}.String())
}
