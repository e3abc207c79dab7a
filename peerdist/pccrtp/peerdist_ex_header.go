package pccrtp

import (
	"fmt"
	"strings"
)

// PeerDistEx is the value of the X-P2P-PeerDistEx header (PeerDist 1.1).
//
// A client sends the range of content information versions it can read,
// e.g. "MinContentInformation=1.0, MaxContentInformation=2.0", plus
// HashRequest=true when asking again after the server said its hashes were
// not ready. A server that returned the plain content because it has no
// hashes yet sends "MakeHashRequest=true".
type PeerDistEx struct {
	// Zero versions are absent and not formatted.
	MinContentInformation Version
	MaxContentInformation Version
	MakeHashRequest       bool
	HashRequest           bool
}

// Bits of seenSet for X-P2P-PeerDistEx parameters.
const (
	seenMin seenSet = 1 << iota
	seenMax
	seenMakeHash
	seenHash
)

// ParsePeerDistEx parses an X-P2P-PeerDistEx value. Every parameter is
// optional; the rules are those of ParsePeerDist.
func ParsePeerDistEx(s string) (PeerDistEx, error) {
	var p PeerDistEx
	var seen seenSet
	err := eachParam(s, func(name, value string) error {
		var err error
		switch {
		case strings.EqualFold(name, "MinContentInformation"):
			if err = seen.add(seenMin, "MinContentInformation"); err == nil {
				p.MinContentInformation, err = ParseVersion(value)
			}
		case strings.EqualFold(name, "MaxContentInformation"):
			if err = seen.add(seenMax, "MaxContentInformation"); err == nil {
				p.MaxContentInformation, err = ParseVersion(value)
			}
		case strings.EqualFold(name, "MakeHashRequest"):
			if err = seen.add(seenMakeHash, "MakeHashRequest"); err == nil {
				p.MakeHashRequest, err = parseFlag("MakeHashRequest", value)
			}
		case strings.EqualFold(name, "HashRequest"):
			if err = seen.add(seenHash, "HashRequest"); err == nil {
				p.HashRequest, err = parseFlag("HashRequest", value)
			}
		}
		return err
	})
	if err != nil {
		return PeerDistEx{}, fmt.Errorf("pccrtp: %s: %w", HeaderPeerDistEx, err)
	}
	return p, nil
}

// String formats the header value; absent fields are left out, so the zero
// value formats as "".
func (p PeerDistEx) String() string {
	var parts []string
	if !p.MinContentInformation.IsZero() {
		parts = append(parts, "MinContentInformation="+p.MinContentInformation.String())
	}
	if !p.MaxContentInformation.IsZero() {
		parts = append(parts, "MaxContentInformation="+p.MaxContentInformation.String())
	}
	if p.MakeHashRequest {
		parts = append(parts, "MakeHashRequest=true")
	}
	if p.HashRequest {
		parts = append(parts, "HashRequest=true")
	}
	return strings.Join(parts, ", ")
}
