package origin

import (
	"strings"
	"testing"

	"github.com/outpost-appliance/outpost/peerdist/pccrc"
)

// FuzzRequestHeaders sends arbitrary PeerDist, Range and conditional
// headers and paths: the server never panics, answers with a sensible
// status, and every peerdist answer is valid content information.
func FuzzRequestHeaders(f *testing.F) {
	f.Add("/f.bin", "peerdist", "Version=1.1", "MinContentInformation=1.0, MaxContentInformation=2.0", "bytes=0-99", "", "")
	f.Add("/f.bin", "peerdist", "Version=1.0", "", "bytes=5-,7-9", `"x"`, "")
	f.Add("/f.bin", "gzip, peerdist;q=0.5", "Version=999.999", "HashRequest=true", "bytes=-1", "", "*")
	f.Add("/f.bin", "peerdist", "Version=1.0, MissingDataRequest=InvalidValue", "", "", "", "")
	f.Add("/f.bin", "peerdist", "Version=1.1", "MinContentInformation=900.0, MaxContentInformation=999.0", "bytes=999999999999999999999-", "Mon, 02 Jan 2006 15:04:05 GMT", `W/"a", "b"`)
	f.Add("/../f.bin", "peerdist", "Version=1.1,,,=", "Min=,", "bytes=--", "W/", `"`)
	f.Add("/sub/", "", "", "", "", "", "")
	fx := newFixture(f, func(o *Options) { o.InlineHashLimit = 1 << 20 })
	fx.write(f, "f.bin", 200_000, 40)
	fx.put(f, "sub/index.html", []byte("hi"))
	fx.waitHashed(f, "f.bin", pccrc.V1)
	fx.waitHashed(f, "f.bin", pccrc.V2)
	f.Fuzz(func(t *testing.T, path, ae, pd, pdEx, rng, ifRange, ifNoneMatch string) {
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
		rec := fx.serveDirect("GET", path, "Accept-Encoding", ae, "X-P2P-PeerDist", pd,
			"X-P2P-PeerDistEx", pdEx, "Range", rng, "If-Range", ifRange, "If-None-Match", ifNoneMatch)
		switch rec.Code {
		case 200, 206, 301, 304, 400, 403, 404, 412, 416:
		default:
			t.Fatalf("status %d", rec.Code)
		}
		if rec.Header().Get("Content-Encoding") == "peerdist" {
			if _, err := pccrc.Parse(rec.Body.Bytes()); err != nil {
				t.Fatalf("peerdist body: %v", err)
			}
		}
	})
}
