package origin

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Plain responses go through http.ServeContent, which evaluates
// conditional requests and ranges itself. A peerdist response carries
// content information instead of the content, so it cannot; these helpers
// apply the same rules (RFC 9110 §13.2.2 and §14) to it.

// preconditions evaluates If-Match, If-Unmodified-Since, If-None-Match and
// If-Modified-Since for a GET or HEAD of the file version with etag and
// modtime. It returns 412, 304, or 0 to go on; with 0, rangeHeader is the
// Range to honour ("" when none, or when If-Range does not match).
func preconditions(r *http.Request, etag string, modtime time.Time) (status int, rangeHeader string) {
	modtime = modtime.Truncate(time.Second)
	if im := r.Header.Get("If-Match"); im != "" {
		if !etagListMatches(im, etag, true) {
			return http.StatusPreconditionFailed, ""
		}
	} else if t, ok := httpDate(r.Header.Get("If-Unmodified-Since")); ok && modtime.After(t) {
		return http.StatusPreconditionFailed, ""
	}
	if inm := r.Header.Get("If-None-Match"); inm != "" {
		if etagListMatches(inm, etag, false) {
			return http.StatusNotModified, ""
		}
	} else if t, ok := httpDate(r.Header.Get("If-Modified-Since")); ok && !modtime.After(t) {
		return http.StatusNotModified, ""
	}
	rangeHeader = r.Header.Get("Range")
	if ir := r.Header.Get("If-Range"); rangeHeader != "" && ir != "" {
		if tag, rest := scanETag(ir); tag != "" {
			if strings.TrimSpace(rest) != "" || !etagStrongMatch(tag, etag) {
				rangeHeader = ""
			}
		} else if t, ok := httpDate(ir); !ok || !t.Equal(modtime) {
			rangeHeader = ""
		}
	}
	return 0, rangeHeader
}

func httpDate(s string) (time.Time, bool) {
	if s == "" {
		return time.Time{}, false
	}
	t, err := http.ParseTime(s)
	return t, err == nil
}

// etagListMatches reports whether the If-Match / If-None-Match list
// matches etag: "*" matches any existing file; strong comparison for
// If-Match, weak for If-None-Match.
func etagListMatches(list, etag string, strong bool) bool {
	list = strings.TrimSpace(list)
	if list == "*" {
		return true
	}
	for list != "" {
		tag, rest := scanETag(list)
		if tag == "" {
			return false
		}
		if strong && etagStrongMatch(tag, etag) || !strong && etagWeakMatch(tag, etag) {
			return true
		}
		list = strings.TrimLeft(strings.TrimSpace(rest), ",")
		list = strings.TrimSpace(list)
	}
	return false
}

// scanETag reads one entity tag (W/"x" or "x") at the start of s and
// returns it and the rest of s; "" when s does not start with one.
func scanETag(s string) (tag, rest string) {
	s = strings.TrimSpace(s)
	start := 0
	if strings.HasPrefix(s, "W/") {
		start = 2
	}
	if len(s) < start+2 || s[start] != '"' {
		return "", ""
	}
	for i := start + 1; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"':
			return s[:i+1], s[i+1:]
		case c == 0x21 || c >= 0x23 && c <= 0x7E || c >= 0x80:
		default:
			return "", ""
		}
	}
	return "", ""
}

func etagStrongMatch(a, b string) bool {
	return a == b && a != "" && !strings.HasPrefix(a, "W/")
}

func etagWeakMatch(a, b string) bool {
	return strings.TrimPrefix(a, "W/") == strings.TrimPrefix(b, "W/")
}

// byteRange is [start, start+length) of the file.
type byteRange struct{ start, length int64 }

var errBadRange = errors.New("invalid range")

// parseRange parses a Range header value against a file of size bytes,
// as net/http does: a syntax error or no satisfiable range is an error.
func parseRange(s string, size int64) ([]byteRange, error) {
	const prefix = "bytes="
	if len(s) < len(prefix) || !strings.EqualFold(s[:len(prefix)], prefix) {
		return nil, errBadRange
	}
	var ranges []byteRange
	for spec := range strings.SplitSeq(s[len(prefix):], ",") {
		spec = strings.TrimSpace(spec)
		if spec == "" {
			continue
		}
		first, last, ok := strings.Cut(spec, "-")
		if !ok {
			return nil, errBadRange
		}
		first, last = strings.TrimSpace(first), strings.TrimSpace(last)
		var r byteRange
		if first == "" {
			// Suffix range: the last n bytes.
			n, err := strconv.ParseInt(last, 10, 64)
			if last == "" || last[0] == '-' || err != nil {
				return nil, errBadRange
			}
			n = min(n, size)
			r = byteRange{start: size - n, length: n}
		} else {
			i, err := strconv.ParseInt(first, 10, 64)
			if err != nil || i < 0 {
				return nil, errBadRange
			}
			if i >= size {
				continue // not satisfiable; others may be
			}
			r.start = i
			if last == "" {
				r.length = size - i
			} else {
				j, err := strconv.ParseInt(last, 10, 64)
				if err != nil || last[0] == '-' || i > j {
					return nil, errBadRange
				}
				r.length = min(j, size-1) - i + 1
			}
		}
		if r.length == 0 {
			continue
		}
		ranges = append(ranges, r)
	}
	if len(ranges) == 0 {
		return nil, errBadRange
	}
	return ranges, nil
}
