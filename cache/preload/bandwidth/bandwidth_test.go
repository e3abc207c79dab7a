package bandwidth

import (
	"bytes"
	"context"
	"io"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestParseRate(t *testing.T) {
	tests := []struct {
		in   string
		want Rate
		str  string
	}{
		{"0", 0, "0"},
		{"20Mbit/s", 20_000_000, "20Mbit/s"},
		{"20 Mbit/s", 20_000_000, "20Mbit/s"},
		{"20mbit/s", 20_000_000, "20Mbit/s"},
		{"20Mbps", 20_000_000, "20Mbit/s"},
		{"20Mb/s", 20_000_000, "20Mbit/s"},
		{"500kbit/s", 500_000, "500kbit/s"},
		{"1.5Gbit/s", 1_500_000_000, "1500Mbit/s"},
		{"2.5MB/s", 20_000_000, "20Mbit/s"},
		{"1MiB/s", 8 << 20, "8388608bit/s"},
		{"1000B/s", 8000, "8kbit/s"},
		{"1_000_000bit/s", 1_000_000, "1Mbit/s"},
	}
	for _, tt := range tests {
		got, err := ParseRate(tt.in)
		if err != nil || got != tt.want || got.String() != tt.str {
			t.Errorf("ParseRate(%q) = %d (%s), %v; want %d (%s)", tt.in, got, got, err, tt.want, tt.str)
		}
		if back, err := ParseRate(got.String()); err != nil || back != got {
			t.Errorf("ParseRate(%q) round trip: %d, %v", got.String(), back, err)
		}
	}
	for _, bad := range []string{"", "20", "fast", "20Mbit", "-5Mbit/s", "20MiB", "20XB/s", "1bit/s", "Mbit/s"} {
		if r, err := ParseRate(bad); err == nil {
			t.Errorf("ParseRate(%q) = %d, want an error", bad, r)
		} else if !strings.Contains(err.Error(), bad) {
			t.Errorf("ParseRate(%q): error %q does not quote the value", bad, err)
		}
	}
}

func TestMin(t *testing.T) {
	for _, tt := range []struct{ a, b, want Rate }{{0, 0, 0}, {0, 5, 5}, {5, 0, 5}, {3, 5, 3}, {5, 3, 3}} {
		if got := Min(tt.a, tt.b); got != tt.want {
			t.Errorf("Min(%d, %d) = %d", tt.a, tt.b, got)
		}
	}
}

// fakeClock is moved by hand; sleeping advances it.
type fakeClock struct {
	mu    sync.Mutex
	now   time.Time
	slept time.Duration
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	c.slept += d
	return ctx.Err()
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// The bucket's arithmetic, on an injected clock: a full bucket pays at
// once, debt is paid at the rate, idle time refills up to the burst only.
func TestLimiterReserve(t *testing.T) {
	clock := &fakeClock{now: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)}
	l := NewLimiterClock(8*1_000_000, clock.Now, clock.Sleep) // 1 MB/s, burst 20 KB
	steps := []struct {
		advance time.Duration
		take    int
		want    time.Duration
	}{
		{0, 20_000, 0},                             // the full bucket
		{0, 10_000, 10 * time.Millisecond},         // 10 KB of debt at 1 MB/s
		{0, 10_000, 20 * time.Millisecond},         // debt accumulates
		{20 * time.Millisecond, 0, 0},              // paid
		{time.Hour, 30_000, 10 * time.Millisecond}, // an hour idle saves only the burst
	}
	for i, s := range steps {
		clock.Advance(s.advance)
		if got := l.Reserve(s.take); got != s.want {
			t.Errorf("step %d: wait %v, want %v", i, got, s.want)
		}
	}
	unlimited := NewLimiterClock(0, clock.Now, clock.Sleep)
	if d := unlimited.Reserve(1 << 30); d != 0 {
		t.Errorf("no limit: wait %v", d)
	}
}

// A reader through the limiter takes as long as the rate says, on the
// fake clock: the bytes over the burst at the rate.
func TestReaderPaysForEveryByte(t *testing.T) {
	clock := &fakeClock{now: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)}
	job := NewLimiterClock(8*1_000_000, clock.Now, clock.Sleep)   // 1 MB/s
	total := NewLimiterClock(8*4_000_000, clock.Now, clock.Sleep) // 4 MB/s: the job's limit is tighter
	data := bytes.Repeat([]byte("x"), 5_000_000)
	n, err := io.Copy(io.Discard, Reader(context.Background(), bytes.NewReader(data), job, nil, total))
	if err != nil || n != int64(len(data)) {
		t.Fatal(n, err)
	}
	want := time.Duration(float64(len(data)-20_000) / 1e6 * float64(time.Second))
	if d := clock.slept - want; d < -time.Millisecond || d > 20*time.Millisecond {
		t.Errorf("slept %v for 5 MB at 1 MB/s, want about %v", clock.slept, want)
	}
}

func TestReaderStopsWithContext(t *testing.T) {
	l := NewLimiter(8 * 1000) // 1 kB/s: the second read would wait 16 s
	ctx, cancel := context.WithCancel(context.Background())
	r := Reader(ctx, bytes.NewReader(make([]byte, 1<<20)), l)
	buf := make([]byte, 64<<10)
	if n, err := r.Read(buf); n != ReadChunk || err != nil {
		t.Fatalf("first read: %d, %v", n, err)
	}
	cancel()
	if _, err := r.Read(buf); err != context.Canceled {
		t.Fatalf("read after cancel: %v", err)
	}
}
