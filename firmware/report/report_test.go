package report_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/outpost-appliance/outpost/firmware/report"
	"github.com/outpost-appliance/outpost/firmware/report/reporttest"
)

var now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func TestCache(t *testing.T) {
	st := reporttest.NewStore(5, now)
	r := report.New(reporttest.Sources(st, false, now))
	c := r.Cache()
	if !c.Running || c.Segments != 5 || c.HeldSegments != 5 || c.Blocks != 1+2+3+4+4 || c.VerifiedBlocks != 1+3+4 {
		t.Errorf("store figures: %+v", c)
	}
	if c.Hits != 900 || c.Misses != 100 || c.HitRatio != 0.9 || c.BytesServed != 1<<20 || c.WANBytesSaved != c.BytesServed {
		t.Errorf("traffic: hits %d misses %d ratio %v served %d saved %d", c.Hits, c.Misses, c.HitRatio, c.BytesServed, c.WANBytesSaved)
	}
	if c.SegmentsOffered != 14 || c.PullFailures != 3 || c.Tags["WinINet"].PullFailures != 3 || c.Tags["BITS-4.0"].StoredBytes != c.Bytes {
		t.Errorf("by tag: %+v", c.Tags)
	}
	if len(c.Tags) != 5 || c.EvictedSegments["limit"] != 2 || c.Disk.Low || c.Fill <= 0 || c.Fill >= 1 {
		t.Errorf("tags, evictions, disk: %+v", c)
	}
	st.Base.FilesystemFree = 10 << 20 // below 5% of 1 GiB
	if !r.Cache().Disk.Low {
		t.Error("a disk below the floor is not reported low")
	}

	// Not running: counters still shown, the store's figures zero.
	c = report.New(reporttest.Sources(nil, false, now)).Cache()
	if c.Running || c.Segments != 0 || c.Hits != 900 {
		t.Errorf("not running: %+v", c)
	}
}

func TestSegmentsPagesAndIntegrity(t *testing.T) {
	st := reporttest.NewStore(5, now)
	r := report.New(reporttest.Sources(st, false, now))
	ctx := context.Background()
	page, err := r.Segments(ctx, "", 2)
	if err != nil || len(page.Segments) != 2 || page.Next == "" {
		t.Fatalf("first page: %+v %v", page, err)
	}
	if s := page.Segments[0]; s.Integrity != report.Verified || s.BlocksHeld != 1 || s.Version != 1 || len(s.ID) != 64 {
		t.Errorf("segment 0: %+v", s)
	}
	if s := page.Segments[1]; s.Integrity != report.Replay || s.BlocksVerified != 0 {
		t.Errorf("segment 1: %+v", s)
	}
	var all []report.Segment
	cursor := ""
	for {
		page, err := r.Segments(ctx, cursor, 2)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, page.Segments...)
		if page.Next == "" {
			break
		}
		cursor = page.Next
	}
	if len(all) != 5 {
		t.Errorf("paging gave %d segments, want 5", len(all))
	}
	if _, err := r.Segments(ctx, "zz", 2); !errors.Is(err, report.ErrBadID) {
		t.Errorf("bad cursor: %v", err)
	}
	if _, err := report.New(reporttest.Sources(nil, false, now)).Segments(ctx, "", 1); !errors.Is(err, report.ErrNotRunning) {
		t.Errorf("not running: %v", err)
	}
}

func TestTopSegments(t *testing.T) {
	st := reporttest.NewStore(30, now)
	r := report.New(reporttest.Sources(st, false, now))
	top, err := r.Top(context.Background(), 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(top.Segments) != 3 || top.Scanned != 30 || top.Segments[0].Hits != 290 || top.Segments[2].Hits != 270 {
		t.Errorf("top: %+v", top)
	}
	// Reused within the TTL, recomputed after ForgetTop.
	st.DeleteSegment(context.Background(), reporttest.ID(30))
	if top, _ := r.Top(context.Background(), 3); top.Segments[0].Hits != 290 {
		t.Error("ranking not reused within its TTL")
	}
	r.ForgetTop()
	if top, _ := r.Top(context.Background(), 3); top.Segments[0].Hits != 280 {
		t.Errorf("after ForgetTop: %+v", top.Segments[0])
	}
}

func TestLeadersAndDiscovery(t *testing.T) {
	none := report.New(reporttest.Sources(nil, false, now))
	if l := none.Leaders(); l.Running || l.Peers == nil || len(l.Peers) != 0 {
		t.Errorf("no leader service: %+v", l)
	}
	if d := none.Discovery(); d.Running || d.Interfaces == nil || d.XDPDropped == nil {
		t.Errorf("no discovery service: %+v", d)
	}
	r := report.New(reporttest.Sources(nil, true, now))
	if l := r.Leaders(); !l.Running || len(l.Peers) != 2 || l.Totals.ForwardsSent != 17 || l.Totals.AuthFailures != 2 {
		t.Errorf("leaders: %+v", l)
	}
	if d := r.Discovery(); d.ProbesSeen != 1010 || d.Answered != 41 || d.XDPDropped["not-held"] != 880 || d.Interfaces[1].XDPDropped == nil {
		t.Errorf("discovery: %+v", d)
	}
}
