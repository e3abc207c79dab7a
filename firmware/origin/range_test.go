package origin

import (
	"bytes"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/outpost-appliance/outpost/peerdist/pccrc"
	"github.com/outpost-appliance/outpost/peerdist/pccrtp"
)

// A peerdist request with one byte range gets the content information of
// that range (pccrc.Restrict), as 206 with Content-Range in content
// offsets, as IIS answers; several ranges, or a range that cannot be met,
// get the content's answer instead.
func TestContentInformationOfRange(t *testing.T) {
	const size = 1_000_000 // several V2 segments, 16 V1 blocks
	fx := newFixture(t, nil)
	data := fx.write(t, "f.bin", size, 2)
	for _, v := range []pccrc.Version{pccrc.V1, pccrc.V2} {
		fx.waitHashed(t, "f.bin", v)
	}
	tests := []struct {
		rng        string
		start, end uint64
	}{
		{"bytes=0-99", 0, 100},
		{"bytes=65536-131071", 65536, 131072},
		{"bytes=70000-", 70000, size},
		{"bytes=-1000", size - 1000, size},
		{"bytes=123456-876543", 123456, 876544},
		{"bytes=0-", 0, size},
		{"bytes=999999-5000000", 999999, size},
	}
	for _, client := range [][]string{win7, win8} {
		for _, tt := range tests {
			t.Run(fmt.Sprintf("%s/%s", client[3], tt.rng), func(t *testing.T) {
				resp, body := fx.get(t, "GET", "/f.bin", with(client, "Range", tt.rng)...)
				if resp.StatusCode != http.StatusPartialContent || resp.Header.Get("Content-Encoding") != "peerdist" {
					t.Fatalf("status %d, Content-Encoding %q", resp.StatusCode, resp.Header.Get("Content-Encoding"))
				}
				if got, want := resp.Header.Get("Content-Range"), fmt.Sprintf("bytes %d-%d/%d", tt.start, tt.end-1, size); got != want {
					t.Errorf("Content-Range %q, want %q", got, want)
				}
				r, err := pccrtp.ParseResponseHeaders(resp.Header)
				if err != nil || !r.PeerDist || r.ContentLength != int64(tt.end-tt.start) {
					t.Errorf("X-P2P-PeerDist %q: %+v %v, want ContentLength %d", resp.Header.Get("X-P2P-PeerDist"), r, err, tt.end-tt.start)
				}
				checkCI(t, parseCI(t, body), data, tt.start, tt.end)
			})
		}
	}

	t.Run("several ranges get the content", func(t *testing.T) {
		resp, body := fx.get(t, "GET", "/f.bin", with(win8, "Range", "bytes=0-9,100-109")...)
		if resp.StatusCode != http.StatusPartialContent || resp.Header.Get("Content-Encoding") != "" {
			t.Fatalf("status %d, Content-Encoding %q", resp.StatusCode, resp.Header.Get("Content-Encoding"))
		}
		parts := readMultipart(t, resp, body)
		if len(parts) != 2 || !bytes.Equal(parts[0], data[:10]) || !bytes.Equal(parts[1], data[100:110]) {
			t.Fatalf("parts %q", parts)
		}
	})
	t.Run("a range that cannot be met gets 416", func(t *testing.T) {
		resp, _ := fx.get(t, "GET", "/f.bin", with(win8, "Range", "bytes=2000000-")...)
		if resp.StatusCode != http.StatusRequestedRangeNotSatisfiable || resp.Header.Get("Content-Range") != "bytes */1000000" {
			t.Fatalf("status %d, Content-Range %q", resp.StatusCode, resp.Header.Get("Content-Range"))
		}
	})
	t.Run("If-Range with another ETag gets the whole content information", func(t *testing.T) {
		resp, body := fx.get(t, "GET", "/f.bin", with(win8, "Range", "bytes=0-99", "If-Range", `"other"`)...)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Encoding") != "peerdist" {
			t.Fatalf("status %d", resp.StatusCode)
		}
		checkCI(t, parseCI(t, body), data, 0, size)
	})
	t.Run("If-Range with the ETag gets the range's", func(t *testing.T) {
		plain, _ := fx.get(t, "HEAD", "/f.bin")
		resp, body := fx.get(t, "GET", "/f.bin", with(win8, "Range", "bytes=0-99", "If-Range", plain.Header.Get("ETag"))...)
		if resp.StatusCode != http.StatusPartialContent {
			t.Fatalf("status %d", resp.StatusCode)
		}
		checkCI(t, parseCI(t, body), data, 0, 100)
	})
}

// V1 content information of a range spanning two 32 MiB segments, and of
// a range inside the second.
func TestContentInformationOfRangeV1Segments(t *testing.T) {
	if testing.Short() {
		t.Skip("hashes 33 MiB")
	}
	const size = 32<<20 + 300_000
	fx := newFixture(t, func(o *Options) { o.Versions = []pccrc.Version{pccrc.V1} })
	data := fx.write(t, "big.bin", size, 3)
	fx.waitHashed(t, "big.bin", pccrc.V1)
	for _, tt := range []struct{ start, end uint64 }{
		{0, size},
		{32<<20 - 10, 32<<20 + 70000},
		{32<<20 + 65536, 32<<20 + 65537},
	} {
		rng := fmt.Sprintf("bytes=%d-%d", tt.start, tt.end-1)
		resp, body := fx.get(t, "GET", "/big.bin", with(win7, "Range", rng)...)
		if resp.StatusCode != http.StatusPartialContent {
			t.Fatalf("%s: status %d", rng, resp.StatusCode)
		}
		ci := parseCI(t, body)
		checkCI(t, ci, data, tt.start, tt.end)
		if tt.start > 32<<20 && len(ci.Segments) != 1 {
			t.Errorf("%s: %d segments, want only the second", rng, len(ci.Segments))
		}
	}
}

// The content is served with Range (single and multiple), ETag,
// Last-Modified and conditional requests, for plain requests and for
// missing-data requests alike; the conditions apply to peerdist answers
// too.
func TestContentRangesAndConditions(t *testing.T) {
	fx := newFixture(t, nil)
	data := fx.write(t, "doc.txt", 200_000, 4)
	fx.waitHashed(t, "doc.txt", pccrc.V2)
	head, _ := fx.get(t, "HEAD", "/doc.txt")
	etag, lastMod := head.Header.Get("ETag"), head.Header.Get("Last-Modified")
	if len(etag) < 4 || etag[0] != '"' || lastMod == "" {
		t.Fatalf("ETag %q, Last-Modified %q: want a strong ETag and a date", etag, lastMod)
	}
	if got := head.Header.Get("Content-Length"); got != "200000" {
		t.Fatalf("HEAD Content-Length %q", got)
	}
	if got := head.Header.Get("Content-Type"); got != "text/plain; charset=utf-8" {
		t.Errorf("Content-Type %q", got)
	}
	modified, _ := http.ParseTime(lastMod)
	past := modified.Add(-time.Hour).Format(http.TimeFormat)
	future := modified.Add(time.Hour).Format(http.TimeFormat)
	missing := []string{"X-P2P-PeerDist", "Version=1.1, MissingDataRequest=true"}

	tests := []struct {
		name    string
		headers []string
		status  int
		body    []byte // nil: not checked
		pd      bool
		crange  string // Content-Range
	}{
		{"whole", nil, 200, data, false, ""},
		{"single range", []string{"Range", "bytes=10-19"}, 206, data[10:20], false, "bytes 10-19/200000"},
		{"open range", []string{"Range", "bytes=199990-"}, 206, data[199990:], false, "bytes 199990-199999/200000"},
		{"suffix range", []string{"Range", "bytes=-5"}, 206, data[199995:], false, "bytes 199995-199999/200000"},
		{"missing data, range", with(missing, "Range", "bytes=65536-131071"), 206, data[65536:131072], false, "bytes 65536-131071/200000"},
		{"missing data, If-Range ETag", with(missing, "Range", "bytes=0-9", "If-Range", etag), 206, data[:10], false, "bytes 0-9/200000"},
		{"If-Range other ETag: whole", []string{"Range", "bytes=0-9", "If-Range", `"x"`}, 200, data, false, ""},
		{"If-Range date", []string{"Range", "bytes=0-9", "If-Range", lastMod}, 206, data[:10], false, "bytes 0-9/200000"},
		{"If-Range older date: whole", []string{"Range", "bytes=0-9", "If-Range", past}, 200, data, false, ""},
		{"unsatisfiable", []string{"Range", "bytes=300000-"}, 416, nil, false, "bytes */200000"},
		{"If-None-Match same", []string{"If-None-Match", etag}, 304, []byte{}, false, ""},
		{"If-None-Match list", []string{"If-None-Match", `"a", ` + etag}, 304, []byte{}, false, ""},
		{"If-None-Match weak same", []string{"If-None-Match", "W/" + etag}, 304, []byte{}, false, ""},
		{"If-None-Match *", []string{"If-None-Match", "*"}, 304, []byte{}, false, ""},
		{"If-None-Match other", []string{"If-None-Match", `"x"`}, 200, data, false, ""},
		{"If-Modified-Since same", []string{"If-Modified-Since", lastMod}, 304, []byte{}, false, ""},
		{"If-Modified-Since earlier", []string{"If-Modified-Since", past}, 200, data, false, ""},
		{"If-Match other", []string{"If-Match", `"x"`}, 412, nil, false, ""},
		{"If-Match same", []string{"If-Match", etag}, 200, data, false, ""},
		{"If-Unmodified-Since earlier", []string{"If-Unmodified-Since", past}, 412, nil, false, ""},
		{"If-Unmodified-Since later", []string{"If-Unmodified-Since", future}, 200, data, false, ""},
		// The same conditions on peerdist answers.
		{"peerdist If-None-Match same", with(win8, "If-None-Match", etag), 304, []byte{}, false, ""},
		{"peerdist If-Modified-Since same", with(win8, "If-Modified-Since", lastMod), 304, []byte{}, false, ""},
		{"peerdist If-Match other", with(win8, "If-Match", `"x"`), 412, nil, false, ""},
		{"peerdist If-Unmodified-Since earlier", with(win8, "If-Unmodified-Since", past), 412, nil, false, ""},
		{"peerdist If-None-Match other", with(win8, "If-None-Match", `"x"`), 200, nil, true, ""},
		{"peerdist If-Match same", with(win8, "If-Match", etag), 200, nil, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := fx.get(t, "GET", "/doc.txt", tt.headers...)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.status)
			}
			if got := resp.Header.Get("Content-Encoding") == "peerdist"; got != tt.pd {
				t.Fatalf("peerdist %v, want %v", got, tt.pd)
			}
			if tt.body != nil && !bytes.Equal(body, tt.body) {
				t.Fatalf("body of %d bytes, want %d", len(body), len(tt.body))
			}
			if tt.status == 304 && resp.Header.Get("ETag") != etag {
				t.Errorf("304 without the ETag")
			}
			if got := resp.Header.Get("Content-Range"); got != tt.crange {
				t.Errorf("Content-Range %q, want %q", got, tt.crange)
			}
		})
	}
	t.Run("several ranges", func(t *testing.T) {
		resp, body := fx.get(t, "GET", "/doc.txt", with(missing, "Range", "bytes=0-4, 100-104, -3")...)
		if resp.StatusCode != 206 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		parts := readMultipart(t, resp, body)
		want := [][]byte{data[:5], data[100:105], data[199997:]}
		if len(parts) != len(want) {
			t.Fatalf("%d parts", len(parts))
		}
		for i := range want {
			if !bytes.Equal(parts[i], want[i]) {
				t.Errorf("part %d differs", i)
			}
		}
	})
}

func readMultipart(t *testing.T, resp *http.Response, body []byte) [][]byte {
	t.Helper()
	mt, params, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/byteranges" {
		t.Fatalf("Content-Type %q", resp.Header.Get("Content-Type"))
	}
	if got := resp.Header.Get("Content-Length"); got != strconv.Itoa(len(body)) {
		t.Errorf("Content-Length %q for %d bytes", got, len(body))
	}
	mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
	var parts [][]byte
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			return parts
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(p)
		parts = append(parts, b)
	}
}

func TestParseRange(t *testing.T) {
	tests := []struct {
		in   string
		size int64
		want []byteRange // nil: error
	}{
		{"bytes=0-0", 10, []byteRange{{0, 1}}},
		{"bytes=0-", 10, []byteRange{{0, 10}}},
		{"bytes=5-100", 10, []byteRange{{5, 5}}},
		{"bytes=-3", 10, []byteRange{{7, 3}}},
		{"bytes=-30", 10, []byteRange{{0, 10}}},
		{"Bytes=1-2, 4-5", 10, []byteRange{{1, 2}, {4, 2}}},
		{"bytes=10-", 10, nil},
		{"bytes=10-, 2-3", 10, []byteRange{{2, 2}}},
		{"bytes=-0", 10, nil},
		{"bytes=3-2", 10, nil},
		{"bytes=a-b", 10, nil},
		{"bytes=1", 10, nil},
		{"bytes=--1", 10, nil},
		{"bytes=1--2", 10, nil},
		{"items=0-1", 10, nil},
		{"bytes=", 10, nil},
		{"", 10, nil},
		{"bytes=99999999999999999999-", 10, nil},
	}
	for _, tt := range tests {
		got, err := parseRange(tt.in, tt.size)
		if (err != nil) != (tt.want == nil) || fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Errorf("parseRange(%q, %d) = %v, %v; want %v", tt.in, tt.size, got, err, tt.want)
		}
	}
}
