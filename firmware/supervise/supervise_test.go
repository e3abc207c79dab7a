package supervise

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// recorder notes events from several goroutines.
type recorder struct {
	mu     sync.Mutex
	events []string
}

func (r *recorder) add(e string) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

func (r *recorder) list() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func stateOf(s *Supervisor, name string) Status {
	for _, st := range s.Snapshot() {
		if st.Name == name {
			return st
		}
	}
	return Status{}
}

func TestBackoffDelay(t *testing.T) {
	b := Backoff{Initial: time.Second, Max: 30 * time.Second}
	for _, tt := range []struct {
		n    int
		want time.Duration
	}{{1, time.Second}, {2, 2 * time.Second}, {3, 4 * time.Second}, {5, 16 * time.Second}, {6, 30 * time.Second}, {100, 30 * time.Second}} {
		if got := b.Delay(tt.n); got != tt.want {
			t.Errorf("Delay(%d) = %v, want %v", tt.n, got, tt.want)
		}
	}
}

// Services start after their dependencies are ready, and stop in reverse.
func TestDependencyOrder(t *testing.T) {
	var rec recorder
	sup := New(Options{Logger: quiet})
	svc := func(name string, readyAfter time.Duration) Service {
		return Func{name, func(ctx context.Context, ready func()) error {
			rec.add("start " + name)
			time.Sleep(readyAfter) // a slow start: dependents must wait
			ready()
			<-ctx.Done()
			rec.add("stop " + name)
			return nil
		}}
	}
	// Added out of order on purpose.
	mustAdd(t, sup, svc("api", 0), "cache", "net")
	mustAdd(t, sup, svc("cache", 30*time.Millisecond), "net")
	mustAdd(t, sup, svc("net", 30*time.Millisecond))
	mustAdd(t, sup, svc("xdp", 0), "net")
	if err := sup.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-sup.Ready():
	case <-time.After(5 * time.Second):
		t.Fatal("never ready")
	}
	for _, st := range sup.Snapshot() {
		if st.State != Running {
			t.Errorf("%s is %s after Ready", st.Name, st.State)
		}
	}
	if err := sup.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	ev := rec.list()
	idx := func(e string) int { return slices.Index(ev, e) }
	if !(idx("start net") < idx("start cache") && idx("start cache") < idx("start api") && idx("start net") < idx("start xdp")) {
		t.Errorf("start order wrong: %v", ev)
	}
	// Start order is net, cache, api, xdp (stable): stop is the reverse.
	wantStops := []string{"stop xdp", "stop api", "stop cache", "stop net"}
	var stops []string
	for _, e := range ev {
		if strings.HasPrefix(e, "stop ") {
			stops = append(stops, e)
		}
	}
	if !slices.Equal(stops, wantStops) {
		t.Errorf("stop order %v, want %v", stops, wantStops)
	}
	for _, st := range sup.Snapshot() {
		if st.State != Stopped {
			t.Errorf("%s is %s after Stop", st.Name, st.State)
		}
	}
}

func mustAdd(t *testing.T, s *Supervisor, svc Service, after ...string) {
	t.Helper()
	if err := s.Add(svc, after...); err != nil {
		t.Fatal(err)
	}
}

// fakeClock hands the supervisor's backoff delays to the test and fires
// them at once, so the policy is checked without waiting.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	delays []time.Duration
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	c.delays = append(c.delays, d)
	c.mu.Unlock()
	ch := make(chan time.Time, 1)
	ch <- c.Now()
	return ch
}

func (c *fakeClock) Delays() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.delays)
}

// A failing service is restarted with doubling delays up to the cap; a run
// that lasted StableAfter resets the sequence.
func TestRestartWithBackoff(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1_700_000_000, 0)}
	sup := New(Options{
		Logger:  quiet,
		Backoff: Backoff{Initial: 10 * time.Millisecond, Max: 40 * time.Millisecond, StableAfter: time.Minute},
		Now:     clock.Now, After: clock.After,
	})
	var runs int
	var mu sync.Mutex
	release := make(chan struct{})
	mustAdd(t, sup, Func{"flaky", func(ctx context.Context, ready func()) error {
		mu.Lock()
		runs++
		n := runs
		mu.Unlock()
		switch {
		case n <= 5:
			return fmt.Errorf("failure %d", n)
		case n == 6:
			// Runs long enough to count as stable, then fails again.
			ready()
			clock.advance(2 * time.Minute)
			return errors.New("failure after a stable run")
		default:
			ready()
			select {
			case <-ctx.Done():
			case <-release:
			}
			return nil
		}
	}})
	if err := sup.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	<-sup.Ready()
	waitFor(t, "the 7th run", func() bool { mu.Lock(); defer mu.Unlock(); return runs == 7 })
	waitFor(t, "running", func() bool { return stateOf(sup, "flaky").State == Running })
	want := []time.Duration{10, 20, 40, 40, 40, 10}
	for i := range want {
		want[i] *= time.Millisecond
	}
	if got := clock.Delays(); !slices.Equal(got, want) {
		t.Errorf("backoff delays %v, want %v", got, want)
	}
	st := stateOf(sup, "flaky")
	if st.Restarts != 6 || st.LastError != "failure after a stable run" || st.LastErrorAt.IsZero() {
		t.Errorf("status %+v", st)
	}
	if err := sup.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	close(release)
}

// While a service backs off, its state says so, with the next start time.
func TestBackingOffState(t *testing.T) {
	sup := New(Options{Logger: quiet, Backoff: Backoff{Initial: time.Hour, Max: time.Hour, StableAfter: time.Hour}})
	mustAdd(t, sup, Func{"broken", func(ctx context.Context, ready func()) error { return errors.New("port in use") }})
	if err := sup.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "backing off", func() bool { return stateOf(sup, "broken").State == BackingOff })
	st := stateOf(sup, "broken")
	if st.LastError != "port in use" || st.Restarts != 1 || time.Until(st.NextStart) < 59*time.Minute {
		t.Errorf("status %+v", st)
	}
	if !sup.Healthy(time.Minute) {
		t.Error("unhealthy right after a failure")
	}
	if sup.Healthy(0) {
		t.Error("healthy although the service has been down longer than maxDown")
	}
	// Stop interrupts the backoff wait at once.
	start := time.Now()
	if err := sup.Stop(context.Background()); err != nil || time.Since(start) > time.Second {
		t.Errorf("Stop = %v after %v", err, time.Since(start))
	}
	if st := stateOf(sup, "broken"); st.State != Stopped {
		t.Errorf("state %s after Stop", st.State)
	}
}

func TestPermanentFailureAndPanic(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1_700_000_000, 0)}
	sup := New(Options{Logger: quiet, Now: clock.Now, After: clock.After})
	mustAdd(t, sup, Func{"misconfigured", func(ctx context.Context, ready func()) error {
		return Permanent(errors.New("no usable certificate"))
	}})
	var panics int
	var mu sync.Mutex
	mustAdd(t, sup, Func{"buggy", func(ctx context.Context, ready func()) error {
		mu.Lock()
		panics++
		n := panics
		mu.Unlock()
		if n == 1 {
			var m map[string]int
			m["boom"]++ // a nil-map write: a panic, recovered and restarted
		}
		ready()
		<-ctx.Done()
		return nil
	}})
	if err := sup.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "failed", func() bool { return stateOf(sup, "misconfigured").State == Failed })
	waitFor(t, "buggy running", func() bool { return stateOf(sup, "buggy").State == Running })
	if st := stateOf(sup, "misconfigured"); st.Restarts != 0 || st.LastError != "no usable certificate" {
		t.Errorf("failed service: %+v", st)
	}
	if st := stateOf(sup, "buggy"); st.Restarts != 1 || !strings.HasPrefix(st.LastError, "panic: assignment to entry in nil map") {
		t.Errorf("panicking service: %+v", st)
	}
	if !sup.Healthy(0) {
		t.Error("a failed service must not make the box unhealthy (a reboot would not fix it)")
	}
	if err := sup.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := stateOf(sup, "misconfigured"); st.State != Failed {
		t.Errorf("failed service became %s on Stop", st.State)
	}
}

// A service that ignores cancellation is abandoned after StopTimeout; the
// others are still stopped, in order.
func TestStopDeadline(t *testing.T) {
	var rec recorder
	sup := New(Options{Logger: quiet, StopTimeout: 100 * time.Millisecond})
	hang := make(chan struct{})
	defer close(hang)
	mustAdd(t, sup, Func{"base", func(ctx context.Context, ready func()) error {
		ready()
		<-ctx.Done()
		rec.add("stop base")
		return nil
	}})
	mustAdd(t, sup, Func{"stubborn", func(ctx context.Context, ready func()) error {
		ready()
		<-hang // ignores ctx
		return nil
	}}, "base")
	if err := sup.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	<-sup.Ready()
	start := time.Now()
	err := sup.Stop(context.Background())
	took := time.Since(start)
	if err == nil || !strings.Contains(err.Error(), "stubborn") {
		t.Errorf("Stop = %v, want an error naming the stubborn service", err)
	}
	if took < 100*time.Millisecond || took > 2*time.Second {
		t.Errorf("Stop took %v, want about the 100ms StopTimeout", took)
	}
	if !slices.Equal(rec.list(), []string{"stop base"}) {
		t.Errorf("base not stopped after the stubborn one was abandoned: %v", rec.list())
	}
	st := stateOf(sup, "stubborn")
	if st.State != Stopped || !strings.Contains(st.LastError, "abandoned") {
		t.Errorf("stubborn status %+v", st)
	}

	// Stop's own deadline bounds the wait too.
	sup2 := New(Options{Logger: quiet, StopTimeout: time.Hour})
	mustAdd(t, sup2, Func{"stubborn", func(ctx context.Context, ready func()) error { ready(); <-hang; return nil }})
	if err := sup2.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	<-sup2.Ready()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start = time.Now()
	if err := sup2.Stop(ctx); err == nil || time.Since(start) > 2*time.Second {
		t.Errorf("Stop(ctx) = %v after %v", err, time.Since(start))
	}
}

func TestStartErrors(t *testing.T) {
	noop := func(name string) Service {
		return Func{name, func(ctx context.Context, ready func()) error { ready(); <-ctx.Done(); return nil }}
	}
	sup := New(Options{Logger: quiet})
	mustAdd(t, sup, noop("a"), "missing")
	if err := sup.Start(context.Background()); err == nil || !strings.Contains(err.Error(), `"missing", which does not exist`) {
		t.Errorf("unknown dependency: %v", err)
	}
	sup = New(Options{Logger: quiet})
	mustAdd(t, sup, noop("a"), "b")
	mustAdd(t, sup, noop("b"), "a")
	mustAdd(t, sup, noop("c"))
	if err := sup.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "cycle among [a b]") {
		t.Errorf("cycle: %v", err)
	}
	if err := sup.Add(noop("c")); err == nil {
		t.Error("duplicate name accepted")
	}
	// No services: ready at once.
	empty := New(Options{Logger: quiet})
	if err := empty.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-empty.Ready():
	case <-time.After(time.Second):
		t.Error("an empty supervisor is not ready")
	}
}

// A service whose dependency never comes up stays starting and is stopped
// cleanly.
func TestDependentOfBrokenService(t *testing.T) {
	sup := New(Options{Logger: quiet, Backoff: Backoff{Initial: time.Hour, Max: time.Hour, StableAfter: time.Hour}})
	mustAdd(t, sup, Func{"net", func(ctx context.Context, ready func()) error { return errors.New("no link") }})
	started := make(chan struct{}, 1)
	mustAdd(t, sup, Func{"api", func(ctx context.Context, ready func()) error { started <- struct{}{}; return nil }}, "net")
	if err := sup.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "net backing off", func() bool { return stateOf(sup, "net").State == BackingOff })
	if st := stateOf(sup, "api"); st.State != Starting {
		t.Errorf("api is %s while net is down", st.State)
	}
	if err := sup.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-started:
		t.Error("api started although net never became ready")
	default:
	}
}
