package history

import (
	"context"
	"testing"
	"time"
)

func TestBoundedOldestFirst(t *testing.T) {
	tests := []struct {
		name  string
		size  int
		added int
		want  []uint64 // BytesServed of the samples kept
	}{
		{"empty", 3, 0, nil},
		{"not full", 3, 2, []uint64{0, 1}},
		{"full", 3, 3, []uint64{0, 1, 2}},
		{"wrapped", 3, 7, []uint64{4, 5, 6}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := New(tt.size, time.Second)
			for i := range tt.added {
				h.Add(Sample{BytesServed: uint64(i)})
			}
			got := h.Samples()
			if len(got) != len(tt.want) {
				t.Fatalf("%d samples, want %d", len(got), len(tt.want))
			}
			for i := range got {
				if got[i].BytesServed != tt.want[i] {
					t.Errorf("sample %d: %d, want %d", i, got[i].BytesServed, tt.want[i])
				}
			}
		})
	}
}

func TestServiceSamples(t *testing.T) {
	h := New(100, 10*time.Millisecond)
	n := uint64(0)
	svc := h.Service(func() Sample { n++; return Sample{Time: time.Now(), BytesServed: n} })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	ready := make(chan struct{})
	go func() { done <- svc.Run(ctx, func() { close(ready) }) }()
	<-ready
	if len(h.Samples()) != 1 {
		t.Error("no sample at start")
	}
	time.Sleep(100 * time.Millisecond)
	cancel()
	<-done
	if s := h.Samples(); len(s) < 3 || s[len(s)-1].BytesServed != uint64(len(s)) {
		t.Errorf("%d samples after 100 ms of 10 ms ticks", len(s))
	}
}
