package pchc

import "strings"

// URL paths the hosted cache listens on (protocols.md §1, §4.1). Windows
// reserves them with a trailing slash; the specification prints them
// without one.
const (
	// PathV1 receives version 1.0 offers (Windows 7, or later clients in
	// "Windows7" mode), normally over HTTPS on DefaultPortV1.
	PathV1 = "/C574AC30-5794-4AEE-B1BB-6651C5315029/"
	// PathV2 receives version 2.0 offers (Windows 8 and later), normally
	// over plain HTTP on DefaultPortV2.
	PathV2 = "/0131501b-d67f-491b-9a40-c4bf27bcb4d4/"
)

// Default listening ports of a Windows Server 2012+ hosted cache.
const (
	DefaultPortV1 = 443
	DefaultPortV2 = 80
)

// MatchPath reports whether p (a request URL path, without query) is one of
// the hosted-cache offer paths, and which protocol major version that path
// belongs to. Matching ignores case, as http.sys does, and accepts the path
// with or without its trailing slash.
//
// The returned version is informational only. Although the specification
// ties v1 to the HTTPS URL and v2 to the HTTP URL, the conformance suite
// sends SEGMENT_INFO after a BATCHED_OFFER (§9 rows 13 and 15), so a server
// should accept every message type on both paths and both transports.
func MatchPath(p string) (major uint8, ok bool) {
	switch {
	case matchOne(p, PathV1):
		return 1, true
	case matchOne(p, PathV2):
		return 2, true
	}
	return 0, false
}

func matchOne(p, want string) bool {
	return strings.EqualFold(p, want) || strings.EqualFold(p, strings.TrimSuffix(want, "/"))
}
