package bandwidth

import (
	"context"
	"io"
	"sync"
	"time"
)

// Limiter is a token bucket of bytes: tokens accrue at the rate up to a
// burst, and each byte read takes one. A reader that takes more than the
// bucket holds goes into debt and waits until the debt is paid, so any
// number of readers sharing a limiter together stay within the rate.
// The zero rate is no limit.
type Limiter struct {
	mu     sync.Mutex
	rate   float64 // bytes per second
	burst  float64
	tokens float64
	last   time.Time
	now    func() time.Time
	sleep  func(ctx context.Context, d time.Duration) error
}

// MinBurst is the smallest bucket: one read's worth, so that a low limit
// still reads in useful pieces.
const MinBurst = 16 << 10

// burstTime is how much of the rate the bucket saves up: short, so a
// transfer that starts, or resumes after a pause, is not a spike on the
// link.
const burstTime = 20 * time.Millisecond

// NewLimiter returns a limiter at rate r (0: no limit).
func NewLimiter(r Rate) *Limiter {
	l := &Limiter{now: time.Now, sleep: sleepCtx}
	l.SetRate(r)
	return l
}

// NewLimiterClock is NewLimiter with a clock and a sleep that tests
// control.
func NewLimiterClock(r Rate, now func() time.Time, sleep func(context.Context, time.Duration) error) *Limiter {
	l := &Limiter{now: now, sleep: sleep}
	l.SetRate(r)
	return l
}

// SetRate changes the rate; tokens saved up are kept within the new burst.
func (l *Limiter) SetRate(r Rate) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fresh := l.last.IsZero()
	l.refill()
	l.rate = r.BytesPerSecond()
	l.burst = max(MinBurst, l.rate*burstTime.Seconds())
	l.tokens = min(l.tokens, l.burst)
	if fresh {
		l.tokens = l.burst // start with a full bucket
	}
}

// Rate returns the limiter's rate.
func (l *Limiter) Rate() Rate {
	l.mu.Lock()
	defer l.mu.Unlock()
	return Rate(l.rate * 8)
}

// refill adds the tokens earned since the last call. l.mu is held.
func (l *Limiter) refill() {
	now := l.now()
	if !l.last.IsZero() && l.rate > 0 {
		l.tokens = min(l.burst, l.tokens+now.Sub(l.last).Seconds()*l.rate)
	}
	l.last = now
}

// Reserve takes n tokens and returns how long the caller must wait before
// using them (0 when the bucket had them).
func (l *Limiter) Reserve(n int) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.rate <= 0 {
		return 0
	}
	l.refill()
	l.tokens -= float64(n)
	if l.tokens >= 0 {
		return 0
	}
	return time.Duration(-l.tokens / l.rate * float64(time.Second))
}

// Wait takes n tokens and waits until they are paid for, or ctx ends.
func (l *Limiter) Wait(ctx context.Context, n int) error {
	if d := l.Reserve(n); d > 0 {
		return l.sleep(ctx, d)
	}
	return ctx.Err()
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ReadChunk is the most a limited reader reads at once.
const ReadChunk = 16 << 10

// Reader returns r read through the limiters (nil ones are skipped): each
// read is at most ReadChunk bytes and is paid for in every limiter before
// it returns, so the data leaves the socket no faster than the tightest
// limit. TCP's receive window then slows the sender: the limit holds on
// the wire, not just in the process.
func Reader(ctx context.Context, r io.Reader, limiters ...*Limiter) io.Reader {
	var active []*Limiter
	for _, l := range limiters {
		if l != nil {
			active = append(active, l)
		}
	}
	return &limitedReader{ctx: ctx, r: r, limiters: active}
}

type limitedReader struct {
	ctx      context.Context
	r        io.Reader
	limiters []*Limiter
}

func (lr *limitedReader) Read(p []byte) (int, error) {
	if len(p) > ReadChunk {
		p = p[:ReadChunk]
	}
	n, err := lr.r.Read(p)
	if n > 0 {
		for _, l := range lr.limiters {
			if werr := l.Wait(lr.ctx, n); werr != nil {
				return n, werr
			}
		}
	}
	return n, err
}
