// Package supervise runs Outpost's services (hosted cache, peer, leader,
// XDP, API, …) the way gokrazy's init runs its programs: each service is
// started once the services it depends on are up, restarted with
// exponential backoff when it fails, reported (starting, running, backing
// off, failed, stopped, with its last error and restart count), and
// stopped in reverse order within a deadline.
package supervise

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"
)

// Service is one long-running part of the appliance.
type Service interface {
	// Name identifies the service in status, logs and dependencies.
	Name() string
	// Run does the service's work until ctx is cancelled, then returns
	// (its error is then ignored). It calls ready once it is serving
	// (listening, attached, …), which lets the services that depend on it
	// start. Returning early is a failure: the service is restarted after
	// a backoff, unless the error is Permanent.
	Run(ctx context.Context, ready func()) error
}

// Func adapts a name and a function to a Service.
type Func struct {
	ServiceName string
	Fn          func(ctx context.Context, ready func()) error
}

// Name returns ServiceName.
func (f Func) Name() string { return f.ServiceName }

// Run calls Fn.
func (f Func) Run(ctx context.Context, ready func()) error { return f.Fn(ctx, ready) }

// State is where a service is in its life.
type State string

// Service states.
const (
	// Starting: waiting for its dependencies, or Run was called and has
	// not reported ready yet.
	Starting State = "starting"
	// Running: Run reported ready and has not returned.
	Running State = "running"
	// BackingOff: Run returned an error; it is restarted after a delay.
	BackingOff State = "backing off"
	// Failed: Run returned a Permanent error; it is not restarted.
	Failed State = "failed"
	// Stopping: Stop cancelled it and is waiting for Run to return.
	Stopping State = "stopping"
	// Stopped: Stop ended it (or it did not return within the deadline
	// and was abandoned; LastError says so).
	Stopped State = "stopped"
)

// Status is a snapshot of one service, for the status API.
type Status struct {
	Name  string   `json:"name"`
	After []string `json:"after,omitempty"`
	State State    `json:"state"`
	// Since is when the service entered State.
	Since time.Time `json:"since"`
	// Restarts counts restarts after failures.
	Restarts    int       `json:"restarts"`
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
	// NextStart is when a backing-off service is started again.
	NextStart time.Time `json:"next_start,omitzero"`
}

// Backoff is the restart policy: the delay doubles with each consecutive
// failure from Initial up to Max, and the count of consecutive failures
// starts over once a run has lasted StableAfter.
type Backoff struct {
	Initial     time.Duration
	Max         time.Duration
	StableAfter time.Duration
}

// DefaultBackoff suits an unattended box: retry quickly at first, then
// once a minute forever (a network that comes back, a disk that is
// replaced, should bring the service back without a visit).
var DefaultBackoff = Backoff{Initial: time.Second, Max: time.Minute, StableAfter: time.Minute}

// Delay returns the delay before the restart that follows the n-th
// consecutive failure (n >= 1).
func (b Backoff) Delay(n int) time.Duration {
	d := b.Initial
	for i := 1; i < n && d < b.Max; i++ {
		d *= 2
	}
	return min(d, b.Max)
}

// Options tune a Supervisor; the zero value is usable.
type Options struct {
	Backoff Backoff // zero: DefaultBackoff
	// StopTimeout is how long Stop waits for each service to return after
	// cancelling it before abandoning it (default 10 s).
	StopTimeout time.Duration
	Logger      *slog.Logger // nil: slog.Default()
	// Now and After replace the clock in tests.
	Now   func() time.Time
	After func(time.Duration) <-chan time.Time
}

// permanentError marks an error that restarting will not fix.
type permanentError struct{ err error }

func (p permanentError) Error() string { return p.err.Error() }
func (p permanentError) Unwrap() error { return p.err }

// Permanent wraps err so that the supervisor marks the service failed
// instead of restarting it (e.g. a configuration the service cannot use).
func Permanent(err error) error { return permanentError{err} }

// Supervisor runs a set of services.
type Supervisor struct {
	opts    Options
	log     *slog.Logger
	mu      sync.Mutex
	units   []*unit // in the order added
	byName  map[string]*unit
	order   []*unit // start order, set by Start
	started bool
	ready   chan struct{} // closed when every service has been running
}

// unit is one service under supervision.
type unit struct {
	svc    Service
	after  []string
	status Status
	// downSince is when the service last stopped being running (or was
	// added); zero while it runs.
	downSince time.Time
	failures  int // consecutive
	cancel    context.CancelFunc
	done      chan struct{} // closed when its loop returns
	readyOnce sync.Once
	readyCh   chan struct{} // closed the first time it is running
}

// New returns a supervisor with no services.
func New(opts Options) *Supervisor {
	if opts.Backoff == (Backoff{}) {
		opts.Backoff = DefaultBackoff
	}
	if opts.StopTimeout == 0 {
		opts.StopTimeout = 10 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.After == nil {
		opts.After = time.After
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Supervisor{opts: opts, log: log, byName: map[string]*unit{}, ready: make(chan struct{})}
}

// Add registers a service that starts after the named services are
// running. Services are added before Start.
func (s *Supervisor) Add(svc Service, after ...string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	name := svc.Name()
	switch {
	case s.started:
		return fmt.Errorf("supervise: add %q: the supervisor is already started", name)
	case name == "":
		return errors.New("supervise: a service needs a name")
	case s.byName[name] != nil:
		return fmt.Errorf("supervise: service %q added twice", name)
	}
	now := s.opts.Now()
	u := &unit{
		svc:       svc,
		after:     after,
		status:    Status{Name: name, After: after, State: Starting, Since: now},
		downSince: now,
		done:      make(chan struct{}),
		readyCh:   make(chan struct{}),
	}
	s.units = append(s.units, u)
	s.byName[name] = u
	return nil
}

// Start checks the dependencies and starts every service in dependency
// order; it does not block. The services run until Stop: cancelling ctx
// does not stop them (Stop does, in order), it only carries values.
func (s *Supervisor) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return errors.New("supervise: already started")
	}
	order, err := s.startOrder()
	if err != nil {
		return err
	}
	s.order = order
	s.started = true
	base := context.WithoutCancel(ctx)
	for _, u := range order {
		uctx, cancel := context.WithCancel(base)
		u.cancel = cancel
		deps := make([]*unit, len(u.after))
		for i, name := range u.after {
			deps[i] = s.byName[name]
		}
		go s.supervise(uctx, u, deps)
	}
	go s.watchReady(order)
	if len(order) == 0 {
		close(s.ready)
	}
	return nil
}

// startOrder sorts the services so that each comes after its dependencies
// and otherwise keeps the order they were added in.
func (s *Supervisor) startOrder() ([]*unit, error) {
	for _, u := range s.units {
		for _, d := range u.after {
			if s.byName[d] == nil {
				return nil, fmt.Errorf("supervise: service %q depends on %q, which does not exist", u.status.Name, d)
			}
		}
	}
	placed := map[*unit]bool{}
	var order []*unit
	for len(order) < len(s.units) {
		progress := false
		for _, u := range s.units {
			if placed[u] {
				continue
			}
			ok := true
			for _, d := range u.after {
				ok = ok && placed[s.byName[d]]
			}
			if ok {
				placed[u] = true
				order = append(order, u)
				progress = true
				break // rescan: the earliest-added ready service goes next
			}
		}
		if !progress {
			var cycle []string
			for _, u := range s.units {
				if !placed[u] {
					cycle = append(cycle, u.status.Name)
				}
			}
			return nil, fmt.Errorf("supervise: dependency cycle among %v", cycle)
		}
	}
	return order, nil
}

func (s *Supervisor) watchReady(order []*unit) {
	for _, u := range order {
		select {
		case <-u.readyCh:
		case <-u.done:
			return
		}
	}
	if len(order) > 0 {
		close(s.ready)
	}
}

// supervise is the life of one service: wait for its dependencies, then
// run it, restarting it with backoff, until it is stopped or fails for good.
func (s *Supervisor) supervise(ctx context.Context, u *unit, deps []*unit) {
	defer close(u.done)
	name := u.status.Name
	for _, d := range deps {
		select {
		case <-d.readyCh:
		case <-ctx.Done():
			s.setState(u, Stopped, nil)
			return
		}
	}
	log := s.log.With("service", name)
	for generation := 1; ; generation++ {
		s.setState(u, Starting, nil)
		log.Debug("starting service")
		runCtx, cancel := context.WithCancel(ctx)
		started := s.opts.Now()
		err := s.runOnce(runCtx, u, generation)
		cancel()

		if ctx.Err() != nil {
			if err != nil && !errors.Is(err, context.Canceled) {
				s.recordError(u, err)
				log.Warn("service stopped with an error", "err", err)
			} else {
				log.Info("service stopped")
			}
			s.setState(u, Stopped, nil)
			return
		}
		if err == nil {
			err = errors.New("exited without an error before it was stopped")
		}
		s.recordError(u, err)
		if errors.As(err, new(permanentError)) {
			log.Error("service failed; not restarting it", "err", err)
			s.setState(u, Failed, nil)
			return
		}
		s.mu.Lock()
		if s.opts.Now().Sub(started) >= s.opts.Backoff.StableAfter {
			u.failures = 0
		}
		u.failures++
		u.status.Restarts++
		restarts := u.status.Restarts
		delay := s.opts.Backoff.Delay(u.failures)
		s.mu.Unlock()
		next := s.opts.Now().Add(delay)
		s.setState(u, BackingOff, func(st *Status) { st.NextStart = next })
		log.Error("service failed; restarting it", "err", err, "in", delay, "restarts", restarts)
		select {
		case <-s.opts.After(delay):
		case <-ctx.Done():
			s.setState(u, Stopped, nil)
			return
		}
	}
}

// runOnce calls Run, turning a panic into an error so that one service's
// bug does not take the appliance down.
func (s *Supervisor) runOnce(ctx context.Context, u *unit, generation int) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v\n%s", r, debug.Stack())
		}
	}()
	ready := func() {
		s.mu.Lock()
		stale := u.status.State != Starting || ctx.Err() != nil
		s.mu.Unlock()
		if stale {
			return
		}
		s.setState(u, Running, nil)
		s.log.Info("service running", "service", u.status.Name, "generation", generation)
		u.readyOnce.Do(func() { close(u.readyCh) })
	}
	return u.svc.Run(ctx, ready)
}

func (s *Supervisor) setState(u *unit, st State, edit func(*Status)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u.status.State == st && edit == nil {
		return
	}
	now := s.opts.Now()
	if u.status.State == Running && st != Running {
		u.downSince = now
	}
	if st == Running {
		u.downSince = time.Time{}
	}
	u.status.State, u.status.Since, u.status.NextStart = st, now, time.Time{}
	if edit != nil {
		edit(&u.status)
	}
}

func (s *Supervisor) recordError(u *unit, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u.status.LastError, u.status.LastErrorAt = err.Error(), s.opts.Now()
}

// Stop stops the services in reverse start order. Each is cancelled and
// given StopTimeout (bounded by ctx's deadline) to return; one that does
// not is abandoned, marked stopped with an error saying so, and Stop goes
// on with the next. The error lists the abandoned services.
func (s *Supervisor) Stop(ctx context.Context) error {
	s.mu.Lock()
	order := s.order
	s.mu.Unlock()
	var abandoned []string
	for i := len(order) - 1; i >= 0; i-- {
		u := order[i]
		select {
		case <-u.done:
			continue
		default:
		}
		s.setState(u, Stopping, nil)
		u.cancel()
		timer := time.NewTimer(s.opts.StopTimeout)
		select {
		case <-u.done:
		case <-timer.C:
			abandoned = append(abandoned, u.status.Name)
		case <-ctx.Done():
			abandoned = append(abandoned, u.status.Name)
		}
		timer.Stop()
		if len(abandoned) > 0 && abandoned[len(abandoned)-1] == u.status.Name {
			err := fmt.Errorf("did not stop within %s; abandoned", s.opts.StopTimeout)
			s.recordError(u, err)
			s.setState(u, Stopped, nil)
			s.log.Error("service did not stop in time", "service", u.status.Name, "err", err)
		}
	}
	if len(abandoned) > 0 {
		return fmt.Errorf("supervise: services did not stop in time: %v", abandoned)
	}
	return nil
}

// Snapshot returns the status of every service, in start order (in the
// order added before Start).
func (s *Supervisor) Snapshot() []Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	units := s.order
	if units == nil {
		units = s.units
	}
	out := make([]Status, len(units))
	for i, u := range units {
		out[i] = u.status
		out[i].After = append([]string(nil), u.after...)
	}
	return out
}

// Ready is closed once every service has reported ready at least once:
// the moment the appliance prints its ready line.
func (s *Supervisor) Ready() <-chan struct{} { return s.ready }

// Healthy reports whether no service has been trying to come up for longer
// than maxDown. Failed services do not count: rebooting would not fix
// them (they are shown in the status instead); it is the hardware
// watchdog's cue.
func (s *Supervisor) Healthy(maxDown time.Duration) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.opts.Now()
	for _, u := range s.units {
		switch u.status.State {
		case Starting, BackingOff:
			if !u.downSince.IsZero() && now.Sub(u.downSince) > maxDown {
				return false
			}
		}
	}
	return true
}
