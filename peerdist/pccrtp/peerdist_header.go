package pccrtp

import (
	"fmt"
	"strconv"
	"strings"
)

// Header names and the content-coding token of MS-PCCRTP.
const (
	HeaderPeerDist   = "X-P2P-PeerDist"
	HeaderPeerDistEx = "X-P2P-PeerDistEx"
	EncodingPeerDist = "peerdist"
)

// PeerDist is the value of the X-P2P-PeerDist header, e.g.
// "Version=1.1, ContentLength=123, MissingDataRequest=true".
//
// Clients send Version (1.0 on Vista/7, 1.1 on Windows 8+), and
// MissingDataRequest when they fall back to the origin for bytes peers
// could not supply. Servers answering with the peerdist encoding send
// Version and ContentLength, the length of the content itself.
type PeerDist struct {
	Version Version
	// ContentLength is the identity length of the entity, present when
	// HasContentLength is set. Never negative.
	ContentLength    int64
	HasContentLength bool
	// MissingDataRequest asks for the actual bytes, not content information.
	MissingDataRequest bool
}

// Bits of seenSet for X-P2P-PeerDist parameters.
const (
	seenVersion seenSet = 1 << iota
	seenContentLength
	seenMissingData
)

// ParsePeerDist parses an X-P2P-PeerDist value. Version is required.
// Parameter names match case-insensitively, as HTTP parameter names do
// (RFC 9110 §5.6.6); unknown parameters are ignored for forward
// compatibility; a known parameter given twice is an error.
func ParsePeerDist(s string) (PeerDist, error) {
	var p PeerDist
	var seen seenSet
	err := eachParam(s, func(name, value string) error {
		switch {
		case strings.EqualFold(name, "Version"):
			if err := seen.add(seenVersion, "Version"); err != nil {
				return err
			}
			v, err := ParseVersion(value)
			p.Version = v
			return err
		case strings.EqualFold(name, "ContentLength"):
			if err := seen.add(seenContentLength, "ContentLength"); err != nil {
				return err
			}
			n, err := parseContentLength(value)
			p.ContentLength, p.HasContentLength = n, true
			return err
		case strings.EqualFold(name, "MissingDataRequest"):
			if err := seen.add(seenMissingData, "MissingDataRequest"); err != nil {
				return err
			}
			flag, err := parseFlag("MissingDataRequest", value)
			p.MissingDataRequest = flag
			return err
		}
		return nil
	})
	if err != nil {
		return PeerDist{}, fmt.Errorf("pccrtp: %s: %w", HeaderPeerDist, err)
	}
	if seen&seenVersion == 0 {
		return PeerDist{}, fmt.Errorf("pccrtp: %s: %w", HeaderPeerDist, malformed("no Version"))
	}
	return p, nil
}

// parseContentLength accepts plain decimal digits only (no sign, no
// spaces), like the HTTP Content-Length header.
func parseContentLength(value string) (int64, error) {
	for i := range len(value) {
		if value[i] < '0' || value[i] > '9' {
			return 0, malformed("ContentLength=%q is not a decimal number", value)
		}
	}
	n, err := strconv.ParseInt(value, 10, 64)
	if err != nil {
		return 0, malformed("ContentLength=%q out of range", value)
	}
	return n, nil
}

// String formats the header value in the order and spelling Windows uses.
func (p PeerDist) String() string {
	var b strings.Builder
	b.WriteString("Version=")
	b.WriteString(p.Version.String())
	if p.HasContentLength {
		b.WriteString(", ContentLength=")
		b.WriteString(strconv.FormatInt(p.ContentLength, 10))
	}
	if p.MissingDataRequest {
		b.WriteString(", MissingDataRequest=true")
	}
	return b.String()
}
