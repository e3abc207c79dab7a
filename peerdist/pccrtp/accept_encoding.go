package pccrtp

import "strings"

// AcceptsPeerDist reports whether an Accept-Encoding value (several header
// lines joined with commas) makes the peerdist coding acceptable.
//
// Codings and parameter names match case-insensitively (RFC 9110 §12.5.3).
// peerdist is acceptable when it is listed with a weight above zero and
// never with q=0. A wildcard "*" does not count: content information is
// useless to a client that did not ask for it by name. An element with an
// unparseable weight is treated as not acceptable.
func AcceptsPeerDist(acceptEncoding string) bool {
	accepted := false
	for elem := range strings.SplitSeq(acceptEncoding, ",") {
		coding, params, _ := strings.Cut(elem, ";")
		if !strings.EqualFold(trimOWS(coding), EncodingPeerDist) {
			continue
		}
		if weight, ok := weightOf(params); !ok || weight == 0 {
			return false
		}
		accepted = true
	}
	return accepted
}

// weightOf returns the q parameter of a coding's parameters in thousandths
// (1000 when absent).
func weightOf(params string) (int, bool) {
	weight := 1000
	for param := range strings.SplitSeq(params, ";") {
		param = trimOWS(param)
		if param == "" {
			continue
		}
		name, value, _ := strings.Cut(param, "=")
		if !strings.EqualFold(trimOWS(name), "q") {
			continue
		}
		w, ok := parseQValue(trimOWS(value))
		if !ok {
			return 0, false
		}
		weight = w
	}
	return weight, true
}

// parseQValue parses an RFC 9110 §12.4.2 weight: "0" or "1", optionally
// followed by a dot and up to three digits (only zeros after a 1).
func parseQValue(s string) (int, bool) {
	if s == "" || (s[0] != '0' && s[0] != '1') {
		return 0, false
	}
	whole := int(s[0] - '0')
	frac := s[1:]
	if frac == "" {
		return whole * 1000, true
	}
	if frac[0] != '.' || len(frac) > 4 {
		return 0, false
	}
	thousandths := 0
	for i, scale := 1, 100; i < len(frac); i, scale = i+1, scale/10 {
		c := frac[i]
		if c < '0' || c > '9' || (whole == 1 && c != '0') {
			return 0, false
		}
		thousandths += int(c-'0') * scale
	}
	return whole*1000 + thousandths, true
}
