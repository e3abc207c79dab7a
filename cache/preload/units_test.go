package preload

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
	"testing/iotest"
	"time"
)

// feed hands every unit its exact bytes whatever the reads look like:
// one byte at a time, halves, big reads; with gaps between units,
// overlapping units (V1 blocks and V2 segments of the same bytes), and a
// body that starts before the first unit.
func TestFeed(t *testing.T) {
	data := make([]byte, 1<<20)
	rand.NewChaCha8([32]byte{42}).Read(data)
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 200 {
		// Random units in [base, len): some disjoint, some overlapping.
		base := uint64(rng.IntN(1000))
		var units []unit
		for range 1 + rng.IntN(12) {
			start := base + uint64(rng.IntN(len(data)-int(base)-1))
			end := start + 1 + uint64(rng.IntN(min(140_000, len(data)-int(start))))
			units = append(units, unit{start: start, end: end})
		}
		sortUnits(units)
		readers := map[string]func(io.Reader) io.Reader{
			"one byte": iotest.OneByteReader, "half": iotest.HalfReader, "whole": func(r io.Reader) io.Reader { return r },
		}
		if round%10 != 0 {
			delete(readers, "one byte") // slow; a tenth of the rounds is plenty
		}
		for name, wrap := range readers {
			got := map[int][]byte{}
			err := feed(context.Background(), wrap(bytes.NewReader(data[base:])), base, units, func(_ context.Context, u unit, b []byte) error {
				for i, v := range units {
					if v == u && got[i] == nil {
						got[i] = bytes.Clone(b)
						break
					}
				}
				return nil
			})
			if err != nil {
				t.Fatalf("round %d %s: %v", round, name, err)
			}
			for i, u := range units {
				if !bytes.Equal(got[i], data[u.start:u.end]) {
					t.Fatalf("round %d %s: unit %d [%d, %d) got %d bytes, not its own", round, name, i, u.start, u.end, len(got[i]))
				}
			}
		}
	}
}

func sortUnits(units []unit) {
	for i := range units {
		for j := i + 1; j < len(units); j++ {
			if units[j].start < units[i].start || (units[j].start == units[i].start && units[j].end < units[i].end) {
				units[i], units[j] = units[j], units[i]
			}
		}
	}
}

func TestFeedShortBodyAndErrors(t *testing.T) {
	data := make([]byte, 1000)
	units := []unit{{start: 100, end: 600}, {start: 600, end: 1200}}
	var delivered int
	err := feed(context.Background(), bytes.NewReader(data), 0, units, func(context.Context, unit, []byte) error { delivered++; return nil })
	if !errors.Is(err, errShortBody) || delivered != 1 {
		t.Errorf("short body: %v after %d units", err, delivered)
	}
	boom := errors.New("boom")
	err = feed(context.Background(), bytes.NewReader(data), 0, units[:1], func(context.Context, unit, []byte) error { return boom })
	if !errors.Is(err, boom) {
		t.Errorf("deliver's error: %v", err)
	}
	err = feed(context.Background(), iotest.ErrReader(boom), 0, units, nil)
	if !errors.Is(err, boom) {
		t.Errorf("read error: %v", err)
	}
	if err := feed(context.Background(), iotest.ErrReader(boom), 0, nil, nil); err != nil {
		t.Errorf("no units: %v", err)
	}
}

func TestIntervals(t *testing.T) {
	units := []unit{{start: 0, end: 10}, {start: 5, end: 12}, {start: 12, end: 20}, {start: 30, end: 40}, {start: 31, end: 35}, {start: 41, end: 42}}
	got := intervals(units)
	want := []interval{{0, 20}, {30, 40}, {41, 42}}
	if len(got) != len(want) {
		t.Fatalf("%v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("%v, want %v", got, want)
		}
	}
	if totalBytes(got) != 31 {
		t.Errorf("total %d", totalBytes(got))
	}
}

func TestParseContentRange(t *testing.T) {
	tests := []struct {
		in          string
		first, last uint64
		total       int64
		ok          bool
	}{
		{"bytes 0-499/1234", 0, 499, 1234, true},
		{"bytes 500-1233/*", 500, 1233, -1, true},
		{"bytes 5-4/10", 0, 0, 0, false},
		{"bytes 0-10/10", 0, 0, 0, false},
		{"bytes */10", 0, 0, 0, false},
		{"items 0-1/2", 0, 0, 0, false},
		{"bytes 0-1", 0, 0, 0, false},
		{"", 0, 0, 0, false},
	}
	for _, tt := range tests {
		first, last, total, err := parseContentRange(tt.in)
		if (err == nil) != tt.ok || (tt.ok && (first != tt.first || last != tt.last || total != tt.total)) {
			t.Errorf("%q: %d-%d/%d, %v", tt.in, first, last, total, err)
		}
	}
}

func TestMeter(t *testing.T) {
	var m meter
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	if m.rate(t0) != 0 {
		t.Error("rate of nothing")
	}
	for i := range 40 { // 1 MB/s for 10 s, in 250 ms steps
		m.add(t0.Add(time.Duration(i)*250*time.Millisecond), 250_000)
	}
	now := t0.Add(10 * time.Second)
	if r := m.rate(now); r < 0.95e6 || r > 1.05e6 {
		t.Errorf("rate %.0f B/s, want 1e6", r)
	}
	if r := m.rate(now.Add(10 * time.Second)); r != 0 {
		t.Errorf("after 10 s of silence: %.0f B/s", r)
	}
}

func FuzzParseContentRange(f *testing.F) {
	for _, s := range []string{"bytes 0-499/1234", "bytes 500-1233/*", "bytes */10", "bytes 18446744073709551615-0/1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		first, last, total, err := parseContentRange(s)
		if err == nil && (last < first || (total >= 0 && uint64(total) <= last)) {
			t.Fatalf("%q: %d-%d/%d accepted", s, first, last, total)
		}
	})
}
