package preload

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/outpost-appliance/outpost/cache/preload/bandwidth"
)

// Clock is the service's time; tests replace it to move through schedule
// windows and backoff without waiting.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Observer is told what jobs and injections do (the appliance's event
// log). Calls are made with no lock held and must not block.
type Observer interface {
	PreloadStarted(Job)
	PreloadCompleted(Job)
	// PreloadFailed: an attempt failed; final when the job gave up.
	PreloadFailed(job Job, final bool)
	// PreloadPaused: the job's window closed (Next is when it opens).
	PreloadPaused(Job)
	PreloadCancelled(Job)
	InjectCompleted(InjectResult)
	InjectRefused(name string, err error)
}

// Defaults of Options.
const (
	DefaultMaxActive    = 2
	DefaultMaxAttempts  = 10
	DefaultRetryMin     = 30 * time.Second
	DefaultRetryMax     = time.Hour
	DefaultRecheck      = 24 * time.Hour
	DefaultKeepFinished = 50
	// notBranchCacheAttempts: a job whose origin answers with the content
	// itself fails after this many attempts.
	notBranchCacheAttempts = 3
)

// DefaultVersions is the content information pre-staged unless a job
// says otherwise: V2, what Windows 8 and later ask hosted caches for.
// Branches with Windows 7 clients add 1.
func DefaultVersions() []int { return []int{2} }

// Options configure the service.
type Options struct {
	// StateFile keeps the jobs across restarts ("" : in memory only).
	StateFile string
	// Store returns the segment store, or nil while the hosted cache is
	// not running (jobs then wait).
	Store func() Store
	// Limit caps all preloading together (0: no limit); each job may
	// have a tighter limit of its own.
	Limit bandwidth.Rate
	// Versions is the default for jobs that name none (DefaultVersions).
	Versions []int
	// MaxActive jobs fetch at once (DefaultMaxActive).
	MaxActive int
	// Entries are the [[preload]] entries of the configuration: jobs
	// that run at start and again Recheck after each completion, so the
	// content stays warm when it changes or is evicted.
	Entries []Spec
	// Recheck is how long after finishing a configured job runs again (0:
	// DefaultRecheck; negative: never).
	Recheck time.Duration
	// MaxAttempts failed in a row make a job fail (DefaultMaxAttempts);
	// the wait between them doubles from RetryMin to RetryMax.
	MaxAttempts        int
	RetryMin, RetryMax time.Duration
	// KeepFinished is how many finished API jobs stay listed.
	KeepFinished int
	// Secret is the content server's secret that injected content
	// information must be made with (inject is refused without it).
	Secret []byte
	// UserAgent of the WAN requests.
	UserAgent string
	// Transport overrides the HTTP transport of the WAN fetches (tests).
	Transport http.RoundTripper
	Observer  Observer
	Clock     Clock
	Logger    *slog.Logger
}

// Errors of the API methods.
var (
	ErrNotRunning = errors.New("the preload service is not running")
	ErrNoJob      = errors.New("no such preload job")
	ErrFinished   = errors.New("the preload job has already finished")
)

// Causes that end an attempt.
var (
	errWindowClosed = errors.New("the schedule window closed")
	errCancelled    = errors.New("cancelled by an operator")
	errStopping     = errors.New("the preload service is stopping")
)

// Service runs preload jobs: a supervised service (Name, Run) with the
// methods the management API calls.
type Service struct {
	opts     Options
	log      *slog.Logger
	clock    Clock
	total    *bandwidth.Limiter
	client   *http.Client
	injector *Injector

	mu      sync.Mutex
	jobs    []*job
	loaded  bool // Run has read the state file: Add works
	running bool
	dirty   bool
	stats   counters
	wake    chan struct{}
}

type counters struct {
	fetchedBytes, storedBlocks, failedAttempts uint64
}

// job is a Job and what runs it.
type job struct {
	Job
	limiter     *bandwidth.Limiter
	meter       meter
	cancel      context.CancelCauseFunc // while running
	hashRequest bool                    // ask with HashRequest=true next time
}

// New returns the service; Run starts it.
func New(opts Options) *Service {
	if len(opts.Versions) == 0 {
		opts.Versions = DefaultVersions()
	}
	if opts.MaxActive <= 0 {
		opts.MaxActive = DefaultMaxActive
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = DefaultMaxAttempts
	}
	if opts.RetryMin <= 0 {
		opts.RetryMin = DefaultRetryMin
	}
	if opts.RetryMax <= 0 {
		opts.RetryMax = DefaultRetryMax
	}
	if opts.Recheck == 0 {
		opts.Recheck = DefaultRecheck
	}
	if opts.KeepFinished <= 0 {
		opts.KeepFinished = DefaultKeepFinished
	}
	if opts.UserAgent == "" {
		opts.UserAgent = "outpost-preload"
	}
	if opts.Clock == nil {
		opts.Clock = realClock{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Store == nil {
		opts.Store = func() Store { return nil }
	}
	transport := opts.Transport
	if transport == nil {
		transport = newTransport()
	}
	s := &Service{
		opts:   opts,
		log:    opts.Logger,
		clock:  opts.Clock,
		total:  bandwidth.NewLimiter(opts.Limit),
		client: &http.Client{Transport: transport},
		wake:   make(chan struct{}, 1),
	}
	s.injector = &Injector{Store: opts.Store, Secret: opts.Secret, Observer: opts.Observer, Logger: opts.Logger, Now: opts.Clock.Now}
	return s
}

// Name implements the supervisor's Service.
func (s *Service) Name() string { return "preload" }

// Injector returns the service's injector (the API's inject endpoints).
func (s *Service) Injector() *Injector { return s.injector }

// Limit is the total limit on preloading.
func (s *Service) Limit() bandwidth.Rate { return s.opts.Limit }

func (s *Service) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Run loads the jobs, runs them until ctx ends, and keeps the state file.
func (s *Service) Run(ctx context.Context, ready func()) error {
	if err := s.load(); err != nil {
		return err
	}
	ready()
	var wg sync.WaitGroup
	for {
		wait := s.schedule(ctx, &wg)
		s.save()
		select {
		case <-ctx.Done():
			s.stop(&wg)
			return nil
		case <-s.wake:
		case <-s.clock.After(wait):
		}
	}
}

// stop ends the running attempts (their jobs go back to the queue, so the
// next start resumes them) and saves the state.
func (s *Service) stop(wg *sync.WaitGroup) {
	s.mu.Lock()
	for _, j := range s.jobs {
		if j.cancel != nil {
			j.cancel(errStopping)
		}
	}
	s.mu.Unlock()
	wg.Wait()
	s.mu.Lock()
	s.running = false
	s.dirty = true
	s.mu.Unlock()
	s.save()
}

// schedule starts the jobs that may run, pauses those whose window
// closed, and returns how long to sleep before looking again.
func (s *Service) schedule(ctx context.Context, wg *sync.WaitGroup) time.Duration {
	now := s.clock.Now()
	st := s.opts.Store()
	wake := now.Add(time.Hour)
	soon := func(t time.Time) {
		if !t.IsZero() && t.Before(wake) {
			wake = t
		}
	}
	var events []func()
	s.mu.Lock()
	active := 0
	for _, j := range s.jobs {
		if j.State == Running {
			active++
		}
	}
	// Jobs asked for over the API go first: someone is waiting for them.
	for _, source := range []string{SourceAPI, SourceConfig} {
		for _, j := range s.jobs {
			if j.Source != source {
				continue
			}
			switch j.State {
			case Running:
				if !j.Window.Open(now) {
					j.cancel(errWindowClosed)
					continue
				}
				soon(j.Window.Next(now))
				soon(now.Add(5 * time.Second)) // progress to the state file
				continue
			case Completed, Failed, Cancelled:
				if j.Source != SourceConfig || j.Next.IsZero() {
					continue
				}
				if now.Before(j.Next) {
					soon(j.Next)
					continue
				}
			case Retrying:
				if now.Before(j.Next) {
					soon(j.Next)
					continue
				}
			}
			// Queued, paused, or due again.
			if !j.Window.Open(now) {
				if j.State != Paused {
					j.State, j.Next = Paused, j.Window.Next(now)
					s.dirty = true
					snap := s.snapshot(j, now)
					events = append(events, func() {
						s.log.Info("preload paused outside its window", "job", snap.ID, "url", snap.URL, "window", snap.Window.String(), "opens", snap.Next)
						s.observe(func(o Observer) { o.PreloadPaused(snap) })
					})
				}
				soon(j.Next)
				continue
			}
			if st == nil || active >= s.opts.MaxActive {
				if j.State != Queued {
					j.State = Queued
					s.dirty = true
				}
				if st == nil {
					soon(now.Add(2 * time.Second))
				}
				continue
			}
			events = append(events, s.start(ctx, wg, j, st, now))
			active++
		}
	}
	s.mu.Unlock()
	for _, e := range events {
		e()
	}
	return max(wake.Sub(now), time.Millisecond)
}

// start runs an attempt of j. s.mu is held; the returned function logs
// the start once it is released.
func (s *Service) start(ctx context.Context, wg *sync.WaitGroup, j *job, st Store, now time.Time) func() {
	actx, cancel := context.WithCancelCause(ctx)
	retry := j.State == Retrying
	j.cancel = cancel
	j.State, j.Started, j.Next = Running, now, time.Time{}
	j.Finished = time.Time{}
	j.meter.reset()
	j.limiter = bandwidth.NewLimiter(j.Limit)
	s.dirty = true
	snap := s.snapshot(j, now)
	wg.Add(1)
	go func() {
		defer wg.Done()
		err := s.attempt(actx, j, st)
		s.finish(j, err, context.Cause(actx))
		cancel(nil)
		s.poke()
	}()
	return func() {
		s.log.Info("preload started", "job", snap.ID, "url", snap.URL, "versions", snap.Versions, "limit", snap.Limit.String(), "attempt", snap.Attempts+1)
		if !retry {
			s.observe(func(o Observer) { o.PreloadStarted(snap) })
		}
	}
}

// finish records how an attempt ended.
func (s *Service) finish(j *job, err, cause error) {
	now := s.clock.Now()
	s.mu.Lock()
	j.cancel = nil
	j.RemainingBytes = 0
	var event func(Observer, Job)
	level, msg := slog.LevelInfo, ""
	switch {
	case err == nil:
		j.State, j.Error, j.Attempts, j.Finished = Completed, "", 0, now
		msg = "preload completed"
		event = Observer.PreloadCompleted
	case cause == errWindowClosed:
		j.State, j.Next = Paused, j.Window.Next(now)
		msg = "preload paused: its window closed"
		event = Observer.PreloadPaused
	case cause == errCancelled:
		j.State, j.Finished = Cancelled, now
		msg = "preload cancelled"
		event = Observer.PreloadCancelled
	case cause == errStopping || errors.Is(cause, context.Canceled):
		// The service is stopping (its context ended first).
		j.State = Queued
		msg = "preload interrupted by a stop; it resumes at the next start"
	default:
		s.stats.failedAttempts++
		j.Attempts++
		j.Error = err.Error()
		var perm *PermanentError
		// An origin that answers with the content may be hashing it
		// without saying so (Windows Server 2008 R2): asked a few times.
		notBC := errors.Is(err, ErrNotBranchCache) && j.Attempts >= notBranchCacheAttempts
		final := errors.As(err, &perm) || notBC || j.Attempts >= s.opts.MaxAttempts
		if errors.Is(err, ErrHashesPending) {
			j.hashRequest = true
		}
		level = slog.LevelWarn
		if final {
			j.State, j.Finished = Failed, now
			msg = "preload failed"
			level = slog.LevelError
		} else {
			j.State, j.Next = Retrying, now.Add(s.backoff(j.Attempts))
			msg = "preload attempt failed; retrying"
		}
		event = func(o Observer, snap Job) { o.PreloadFailed(snap, final) }
	}
	if j.State.Finished() && j.Source == SourceConfig && s.opts.Recheck > 0 {
		j.Next = now.Add(s.opts.Recheck)
	}
	s.dirty = true
	snap := s.snapshot(j, now)
	s.pruneFinished()
	s.mu.Unlock()
	s.log.Log(context.Background(), level, msg, "job", snap.ID, "url", snap.URL, "state", snap.State,
		"fetched_bytes", snap.FetchedBytes, "blocks_held", snap.BlocksHeld, "blocks", snap.Blocks, "error", snap.Error, "next", snap.Next)
	if event != nil {
		s.observe(func(o Observer) { event(o, snap) })
	}
}

func (s *Service) observe(fn func(Observer)) {
	if s.opts.Observer != nil {
		fn(s.opts.Observer)
	}
}

// backoff is the wait before attempt n+1: RetryMin doubled per failure,
// at most RetryMax.
func (s *Service) backoff(failures int) time.Duration {
	d := s.opts.RetryMin
	for i := 1; i < failures && d < s.opts.RetryMax; i++ {
		d *= 2
	}
	return min(d, s.opts.RetryMax)
}

// pruneFinished keeps the newest KeepFinished finished API jobs. s.mu is
// held.
func (s *Service) pruneFinished() {
	finished := 0
	for i := len(s.jobs) - 1; i >= 0; i-- {
		j := s.jobs[i]
		if j.Source != SourceAPI || !j.State.Finished() {
			continue
		}
		finished++
		if finished > s.opts.KeepFinished {
			s.jobs = slices.Delete(s.jobs, i, i+1)
		}
	}
}

// snapshot is the job as the API shows it. s.mu is held.
func (s *Service) snapshot(j *job, now time.Time) Job {
	out := j.Job
	out.Versions = slices.Clone(j.Versions)
	if j.Bytes > 0 {
		out.Progress = float64(j.BytesHeld) / float64(j.Bytes)
	} else if j.State == Completed {
		out.Progress = 1
	}
	out.RateBits, out.ETASeconds = 0, 0
	if j.State == Running {
		rate := j.meter.rate(now)
		out.RateBits = rate * 8
		if rate > 0 && j.RemainingBytes > 0 {
			out.ETASeconds = float64(j.RemainingBytes) / rate
		}
	}
	return out
}

// Jobs returns every job: API jobs then configured ones, oldest first.
func (s *Service) Jobs() []Job {
	now := s.clock.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Job, 0, len(s.jobs))
	for _, source := range []string{SourceAPI, SourceConfig} {
		for _, j := range s.jobs {
			if j.Source == source {
				out = append(out, s.snapshot(j, now))
			}
		}
	}
	return out
}

// Running reports whether the service runs (jobs can be added).
func (s *Service) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.running
}

// Job returns one job.
func (s *Service) Job(id string) (Job, error) {
	now := s.clock.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, j := range s.jobs {
		if j.ID == id {
			return s.snapshot(j, now), nil
		}
	}
	return Job{}, ErrNoJob
}

// Add queues a job for spec (the API's POST). If a job for the same URL
// and versions is not finished, that job is returned instead and added
// is false.
func (s *Service) Add(spec Spec) (Job, bool, error) {
	if len(spec.Versions) == 0 {
		spec.Versions = slices.Clone(s.opts.Versions)
	}
	if err := spec.Validate(); err != nil {
		return Job{}, false, err
	}
	now := s.clock.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.running {
		return Job{}, false, ErrNotRunning
	}
	for _, j := range s.jobs {
		if j.URL == spec.URL && slices.Equal(j.Versions, spec.Versions) && !j.State.Finished() {
			return s.snapshot(j, now), false, nil
		}
	}
	j := &job{Job: Job{ID: newID(), Source: SourceAPI, Spec: spec, State: Queued, Created: now}}
	s.jobs = append(s.jobs, j)
	s.dirty = true
	s.poke()
	s.log.Info("preload queued", "job", j.ID, "url", j.URL, "versions", j.Versions, "limit", j.Limit.String(), "window", j.Window.String())
	return s.snapshot(j, now), true, nil
}

// Cancel stops a job. A running job stops at once (its state changes when
// its attempt has ended); a configured job runs again at its next check.
func (s *Service) Cancel(id string) (Job, error) {
	now := s.clock.Now()
	s.mu.Lock()
	var j *job
	for _, c := range s.jobs {
		if c.ID == id {
			j = c
		}
	}
	switch {
	case j == nil:
		s.mu.Unlock()
		return Job{}, ErrNoJob
	case j.State.Finished():
		snap := s.snapshot(j, now)
		s.mu.Unlock()
		return snap, ErrFinished
	case j.cancel != nil:
		j.cancel(errCancelled)
		snap := s.snapshot(j, now)
		s.mu.Unlock()
		return snap, nil
	}
	j.State, j.Finished = Cancelled, now
	if j.Source == SourceConfig && s.opts.Recheck > 0 {
		j.Next = now.Add(s.opts.Recheck)
	}
	s.dirty = true
	snap := s.snapshot(j, now)
	s.mu.Unlock()
	s.log.Info("preload cancelled", "job", snap.ID, "url", snap.URL)
	s.observe(func(o Observer) { o.PreloadCancelled(snap) })
	s.poke()
	return snap, nil
}

// Stats are the figures the metrics show.
type Stats struct {
	Running bool
	// Jobs by state.
	Jobs map[State]int
	// Since the service started: bytes read from origins, blocks stored,
	// failed attempts.
	FetchedBytes, StoredBlocks, FailedAttempts uint64
	// RateBits is the current total fetch rate (bits per second).
	RateBits float64
	Limit    bandwidth.Rate
	Inject   InjectStats
}

// Stats returns the current figures.
func (s *Service) Stats() Stats {
	now := s.clock.Now()
	s.mu.Lock()
	st := Stats{Running: s.running, Jobs: map[State]int{}, FetchedBytes: s.stats.fetchedBytes,
		StoredBlocks: s.stats.storedBlocks, FailedAttempts: s.stats.failedAttempts, Limit: s.opts.Limit}
	for _, state := range []State{Queued, Running, Paused, Retrying, Completed, Failed, Cancelled} {
		st.Jobs[state] = 0
	}
	for _, j := range s.jobs {
		st.Jobs[j.State]++
		if j.State == Running {
			st.RateBits += j.meter.rate(now) * 8
		}
	}
	s.mu.Unlock()
	st.Inject = s.injector.Stats()
	return st
}

func newID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// configID names a configured job after its URL and versions, so that it
// is the same job across restarts.
func configID(spec Spec) string {
	h := sha256.New()
	h.Write([]byte(spec.URL))
	for _, v := range spec.Versions {
		h.Write([]byte{0, byte(v)})
	}
	return "cfg-" + hex.EncodeToString(h.Sum(nil)[:6])
}

// stateFile is the state file's content.
type stateFile struct {
	Format int   `json:"format"`
	Jobs   []Job `json:"jobs"`
}

const stateFormat = 1

// load reads the state file and merges the configured entries into it:
// jobs that were running are queued again (the store's held blocks say
// where they were), configured jobs no longer configured are dropped.
func (s *Service) load() error {
	var saved stateFile
	if s.opts.StateFile != "" {
		b, err := os.ReadFile(s.opts.StateFile)
		switch {
		case errors.Is(err, os.ErrNotExist):
		case err != nil:
			return fmt.Errorf("preload: state: %w", err)
		default:
			if err := json.Unmarshal(b, &saved); err != nil || saved.Format != stateFormat {
				// Keep the unreadable file for a look, start afresh: a
				// preload state is never worth a service that fails.
				bad := s.opts.StateFile + ".unreadable-" + strconv.FormatInt(time.Now().Unix(), 10)
				os.Rename(s.opts.StateFile, bad)
				s.log.Error("preload state file unreadable; starting with no API jobs", "file", s.opts.StateFile, "kept_as", bad, "err", err, "format", saved.Format)
				saved = stateFile{}
			}
		}
	}
	now := s.clock.Now()
	byID := map[string]*job{}
	var jobs []*job
	for _, sj := range saved.Jobs {
		j := &job{Job: sj}
		if j.State == Running {
			j.State = Queued
		}
		byID[j.ID] = j
		if j.Source == SourceAPI {
			jobs = append(jobs, j)
		}
	}
	for _, e := range s.opts.Entries {
		if len(e.Versions) == 0 {
			e.Versions = slices.Clone(s.opts.Versions)
		}
		id := configID(e)
		j, ok := byID[id]
		if !ok || j.Source != SourceConfig {
			j = &job{Job: Job{ID: id, Source: SourceConfig, State: Queued, Created: now}}
		}
		j.Spec = e
		jobs = append(jobs, j)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.jobs = jobs
	s.loaded, s.running, s.dirty = true, true, true
	return nil
}

// save writes the state file if anything changed (atomically: a power cut
// leaves the old or the new file).
func (s *Service) save() {
	if s.opts.StateFile == "" {
		return
	}
	now := s.clock.Now()
	s.mu.Lock()
	if !s.dirty && !s.anyRunning() {
		s.mu.Unlock()
		return
	}
	state := stateFile{Format: stateFormat}
	for _, j := range s.jobs {
		state.Jobs = append(state.Jobs, s.snapshot(j, now))
	}
	s.dirty = false
	s.mu.Unlock()
	b, err := json.MarshalIndent(state, "", "  ")
	if err == nil {
		err = writeFileAtomic(s.opts.StateFile, b)
	}
	if err != nil {
		s.log.Error("preload: writing the state file", "file", s.opts.StateFile, "err", err)
		s.mu.Lock()
		s.dirty = true
		s.mu.Unlock()
	}
}

func (s *Service) anyRunning() bool {
	for _, j := range s.jobs {
		if j.State == Running {
			return true
		}
	}
	return false
}

func writeFileAtomic(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return err
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
