package appliance

import (
	"testing"
	"time"

	"github.com/outpost-appliance/outpost/firmware/events"
	"github.com/outpost-appliance/outpost/leader/forward"
)

// TestPeerEvents: the leader's peer changes become events 130 and 131
// with the documented fields; reachable at start-up is no event.
func TestPeerEvents(t *testing.T) {
	evlog, err := events.Open(events.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer evlog.Close()
	observe := peerEvents(evlog)
	at := time.Now()
	observe(forward.PeerChange{Name: "berlin", Address: "10.2.0.5", State: forward.PeerReachable, From: forward.PeerUnknown, At: at})
	observe(forward.PeerChange{Name: "berlin", Address: "10.2.0.5", State: forward.PeerUnreachable, From: forward.PeerReachable,
		At: at, Reason: "no answer to 3 keepalives in 1m30s"})
	observe(forward.PeerChange{Name: "10.3.0.5:3704", Address: "10.3.0.5:3704", State: forward.PeerReachable,
		From: forward.PeerUnreachable, At: at, DownFor: 4*time.Minute + 10*time.Second + 300*time.Millisecond})

	page := evlog.Query(events.Query{IDs: []events.ID{events.LeaderUnreachable, events.LeaderReachable}})
	if len(page.Events) != 2 {
		t.Fatalf("events: %+v", page.Events)
	}
	want := map[events.ID]events.Fields{
		events.LeaderUnreachable: {"peer": "berlin", "address": "10.2.0.5", "error": "no answer to 3 keepalives in 1m30s"},
		events.LeaderReachable:   {"peer": "10.3.0.5:3704", "address": "10.3.0.5:3704", "down_for": "4m10s"},
	}
	for _, ev := range page.Events {
		w, ok := want[ev.ID]
		if !ok {
			t.Fatalf("unexpected event %+v", ev)
		}
		for k, v := range w {
			if ev.Fields[k] != v {
				t.Errorf("event %d field %s: %v, want %v", ev.ID, k, ev.Fields[k], v)
			}
		}
		delete(want, ev.ID)
	}
}
