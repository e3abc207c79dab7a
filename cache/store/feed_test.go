package store

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/outpost-appliance/outpost/peerdist/pccrc"
)

func TestFeedEvents(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, testOptions(t, t.TempDir(), nil))
	sub := s.Subscribe()
	c := v1Content(1, 3*pccrc.BlockSize)
	ingestV1(t, s, c) // three blocks, one SegmentAdded
	r := newReplay(2, 100)
	ingestReplay(t, s, r, "")
	if err := s.DeleteSegment(ctx, r.id); err != nil {
		t.Fatal(err)
	}
	evs := drain(sub)
	want := []Event{
		{Kind: SegmentAdded, SegmentID: c.id, Version: pccrc.V1, HeldBlocks: 1}, // or more, if one commit carried them
		{Kind: SegmentAdded, SegmentID: r.id, Version: pccrc.V2, HeldBlocks: 1},
		{Kind: SegmentDeleted, SegmentID: r.id, Version: pccrc.V2, Reason: ReasonOperator},
	}
	if len(evs) != len(want) {
		t.Fatalf("events %+v, want %+v", evs, want)
	}
	for i := range want {
		got := evs[i]
		if got.Kind != want[i].Kind || !bytes.Equal(got.SegmentID, want[i].SegmentID) || got.Version != want[i].Version ||
			got.HeldBlocks < want[i].HeldBlocks || got.Reason != want[i].Reason {
			t.Fatalf("event %d: %+v, want %+v", i, got, want[i])
		}
	}
	sub.Close()
	if _, err := sub.Next(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("Next after Close: %v", err)
	}
}

// A subscriber that does not read never slows ingest; once it is too far
// behind it gets Resync, then the events that follow.
func TestFeedSlowSubscriberResyncs(t *testing.T) {
	ctx := context.Background()
	opt := testOptions(t, t.TempDir(), nil)
	opt.FeedBuffer = 8
	s := openStore(t, opt)
	slow := s.Subscribe()
	defer slow.Close()
	start := time.Now()
	for i := range 50 {
		ingestReplay(t, s, newReplay(uint64(i), 100), "")
	}
	t.Logf("50 segments ingested in %v with a stalled subscriber", time.Since(start))
	if slow.Missed() == 0 {
		t.Fatal("no events counted as missed")
	}
	ev, err := slow.Next(ctx)
	if err != nil || ev.Kind != Resync {
		t.Fatalf("first event after overflow: %+v, %v; want Resync", ev, err)
	}
	// Resync from the listing, then follow the feed.
	page, _, err := s.ListSegments(ctx, nil, 1000)
	if err != nil || len(page) != 50 {
		t.Fatalf("listing after resync: %d segments, %v", len(page), err)
	}
	queued := drain(slow) // events after the overflow, already in the listing
	last := newReplay(1000, 100)
	ingestReplay(t, s, last, "")
	evs := drain(slow)
	if len(evs) != 1 || evs[0].Kind != SegmentAdded || !bytes.Equal(evs[0].SegmentID, last.id) {
		t.Fatalf("after resync (%d queued events skipped): %+v", len(queued), evs)
	}

	// Close wakes a waiting subscriber.
	done := make(chan error, 1)
	go func() { _, err := slow.Next(context.Background()); done <- err }()
	time.Sleep(20 * time.Millisecond)
	s.Close()
	select {
	case err := <-done:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("Next when the store closed: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Next did not return when the store closed")
	}
}
