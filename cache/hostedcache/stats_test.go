package hostedcache

import (
	"net/netip"
	"testing"

	"github.com/outpost-appliance/outpost/peerdist/pchc"
)

func TestStatsByTag(t *testing.T) {
	var s Stats
	s.Offered(pchc.TagBITS)
	s.Served(nil, pchc.TagBITS, 0, 65552)
	s.Served(nil, "", 0, 100) // unknown tag counts as Other
	s.Missed(nil, "", 3)
	s.Pulled(nil, pchc.TagWinINet, 2, 131104)
	s.PullFailed(nil, pchc.TagWinINet, netip.AddrPort{}, nil)
	got := s.Snapshot()
	if got[pchc.TagBITS] != (TagCounters{Offers: 1, Hits: 1, BytesServed: 65552}) {
		t.Errorf("BITS: %+v", got[pchc.TagBITS])
	}
	if got[pchc.TagOther] != (TagCounters{Hits: 1, BytesServed: 100, Misses: 1}) {
		t.Errorf("Other: %+v", got[pchc.TagOther])
	}
	if got[pchc.TagWinINet] != (TagCounters{BlocksPulled: 2, BytesPulled: 131104, PullFailures: 1}) {
		t.Errorf("WinINet: %+v", got[pchc.TagWinINet])
	}
	if len(got) != 5 {
		t.Errorf("%d tags", len(got))
	}
}
