package service

import (
	"testing"
	"time"

	"github.com/outpost-appliance/outpost/leader/forward"
)

// TestPeerChangedAcrossRestarts: the observer hears one outage once, even
// when the forwarder restarts (its peers start unknown) in the middle,
// and its end with the whole length; first contact is no news.
func TestPeerChangedAcrossRestarts(t *testing.T) {
	s := New(Config{})
	var told []forward.PeerChange
	s.ObservePeers(func(c forward.PeerChange) { told = append(told, c) })
	t0 := time.Now()
	change := func(state, from forward.PeerState, at time.Duration) forward.PeerChange {
		return forward.PeerChange{Name: "berlin", Address: "10.2.0.5", State: state, From: from, At: t0.Add(at)}
	}
	down := change(forward.PeerUnreachable, forward.PeerReachable, 90*time.Second)
	down.DownSince = t0

	s.peerChanged(change(forward.PeerReachable, forward.PeerUnknown, 0)) // start-up
	s.peerChanged(down)
	// The forwarder restarts: the peer, still down, is unreachable from
	// unknown, then comes back as reachable from unknown.
	again := change(forward.PeerUnreachable, forward.PeerUnknown, 3*time.Minute)
	again.DownSince = t0.Add(2 * time.Minute)
	s.peerChanged(again)
	s.peerChanged(change(forward.PeerReachable, forward.PeerUnknown, 5*time.Minute))
	// A later outage, within one forwarder's life.
	down2 := change(forward.PeerUnreachable, forward.PeerReachable, 10*time.Minute)
	down2.DownSince = t0.Add(9 * time.Minute)
	s.peerChanged(down2)
	up2 := change(forward.PeerReachable, forward.PeerUnreachable, 11*time.Minute)
	up2.DownSince, up2.DownFor = down2.DownSince, 2*time.Minute
	s.peerChanged(up2)

	want := []struct {
		state, from forward.PeerState
		downFor     time.Duration
	}{
		{forward.PeerUnreachable, forward.PeerReachable, 0},
		{forward.PeerReachable, forward.PeerUnreachable, 5 * time.Minute},
		{forward.PeerUnreachable, forward.PeerReachable, 0},
		{forward.PeerReachable, forward.PeerUnreachable, 2 * time.Minute},
	}
	if len(told) != len(want) {
		t.Fatalf("told %d changes, want %d: %+v", len(told), len(want), told)
	}
	for i, w := range want {
		if c := told[i]; c.State != w.state || c.From != w.from || c.DownFor != w.downFor {
			t.Errorf("change %d: %+v, want %+v", i, c, w)
		}
	}
}
