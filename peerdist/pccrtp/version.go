package pccrtp

import (
	"cmp"
	"strconv"
	"strings"
)

// Version is a MS-PCCRTP version number such as 1.0, 1.1 or 2.0: the
// PeerDist protocol version of X-P2P-PeerDist, or a content information
// version of X-P2P-PeerDistEx. The zero value means "absent".
type Version struct {
	Major, Minor int
}

// maxVersionDigits bounds each component so it fits an int everywhere.
const maxVersionDigits = 9

// ParseVersion parses "major.minor": two runs of ASCII digits joined by a
// dot, with no spaces or signs (MS-PCCRTP §2.2.3; protocols.md §6). The
// components are separate integers, so "1.23" is minor version 23 and
// "1.05" equals "1.5".
func ParseVersion(s string) (Version, error) {
	dot := strings.IndexByte(s, '.')
	if dot < 0 {
		return Version{}, malformed("version %q has no dot", s)
	}
	major, ok := parseVersionPart(s[:dot])
	minor, ok2 := parseVersionPart(s[dot+1:])
	if !ok || !ok2 {
		return Version{}, malformed("version %q is not digits.digits", s)
	}
	return Version{Major: major, Minor: minor}, nil
}

func parseVersionPart(s string) (int, bool) {
	if len(s) == 0 || len(s) > maxVersionDigits {
		return 0, false
	}
	n := 0
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + int(s[i]-'0')
	}
	return n, true
}

// String formats the version as "major.minor".
func (v Version) String() string {
	return strconv.Itoa(v.Major) + "." + strconv.Itoa(v.Minor)
}

// Compare returns -1, 0 or +1 as v is lower than, equal to or higher than
// w, comparing major then minor as integers (1.23 > 1.3).
func (v Version) Compare(w Version) int {
	if c := cmp.Compare(v.Major, w.Major); c != 0 {
		return c
	}
	return cmp.Compare(v.Minor, w.Minor)
}

// IsZero reports whether v is the zero value, used for "absent".
func (v Version) IsZero() bool { return v == Version{} }
