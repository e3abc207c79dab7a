package ratelimit

import (
	"testing"
	"time"
)

func TestBucket(t *testing.T) {
	t0 := time.Unix(1000, 0)
	tests := []struct {
		name       string
		rate, burs float64
		events     []time.Duration
		want       int // allowed
	}{
		{"no limit", 0, 0, make([]time.Duration, 1000), 1000},
		{"burst then nothing", 10, 20, make([]time.Duration, 100), 20},
		{"refills at the rate", 10, 1, []time.Duration{0, 50 * time.Millisecond, 100 * time.Millisecond, 150 * time.Millisecond, 200 * time.Millisecond}, 3},
	}
	for _, tt := range tests {
		b := Bucket{Rate: tt.rate, Burst: tt.burs}
		got := 0
		for _, at := range tt.events {
			if b.Allow(t0.Add(at)) {
				got++
			}
		}
		if got != tt.want {
			t.Errorf("%s: %d allowed, want %d", tt.name, got, tt.want)
		}
	}
}

func TestKeyedIsolatesSources(t *testing.T) {
	t0 := time.Unix(1000, 0)
	k := NewKeyed[string](100, 200, 2)
	flood := 0
	for i := range 10000 {
		if k.Allow("flooder", t0.Add(time.Duration(i)*100*time.Microsecond)) {
			flood++
		}
	}
	if flood > 300 {
		t.Errorf("flooder got %d of 10000 through in 1 s at 100/s", flood)
	}
	if !k.Allow("client", t0.Add(time.Second)) {
		t.Error("another source was refused")
	}
	// Full table, nobody idle: a third source is refused rather than
	// growing the table.
	if k.Allow("third", t0.Add(time.Second)) {
		t.Error("table grew past MaxKeys")
	}
	if !k.Allow("third", t0.Add(5*time.Second)) {
		t.Error("idle entries were not dropped for a new source")
	}
}
