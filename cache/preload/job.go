package preload

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"time"

	"github.com/outpost-appliance/outpost/cache/preload/bandwidth"
	"github.com/outpost-appliance/outpost/cache/preload/window"
)

// State is where a job is.
type State string

// Job states.
const (
	Queued    State = "queued"    // waiting for its turn (or for the hosted cache)
	Running   State = "running"   // fetching
	Paused    State = "paused"    // outside its schedule window; resumes when it opens
	Retrying  State = "retrying"  // an attempt failed; the next one is at Next
	Completed State = "completed" // everything is held (config jobs are checked again at Next)
	Failed    State = "failed"    // gave up: Error says why
	Cancelled State = "cancelled" // an operator cancelled it
)

// Finished reports whether the job will not run again by itself (a
// completed config job is re-checked; see Job.Next).
func (s State) Finished() bool { return s == Completed || s == Failed || s == Cancelled }

// Sources of jobs.
const (
	SourceConfig = "config" // a [[preload]] entry
	SourceAPI    = "api"    // POST /api/v1/preload (`outpost preload`)
)

// Spec is what to preload.
type Spec struct {
	// URL of the content on a BranchCache-enabled origin (http or https).
	URL string `json:"url"`
	// Versions of content information to pre-stage: 2 (Windows 8 and
	// later), 1 (Windows 7); empty: the service's default.
	Versions []int `json:"versions,omitempty"`
	// Limit caps this job's WAN fetches (0: only the total limit).
	Limit bandwidth.Rate `json:"limit"`
	// Window is the daily schedule window; outside it the job pauses.
	Window window.Window `json:"window"`
}

// ErrInvalidSpec is wrapped by the errors of Spec.Validate.
var ErrInvalidSpec = errors.New("invalid preload job")

// Validate checks the spec's URL and versions.
func (s Spec) Validate() error {
	u, err := url.Parse(s.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%w: url %q: expected an http:// or https:// URL of a file on a BranchCache-enabled server", ErrInvalidSpec, s.URL)
	}
	if u.User != nil {
		return fmt.Errorf("%w: url %q: credentials in URLs are not supported", ErrInvalidSpec, redactURL(u))
	}
	return CheckVersions(s.Versions)
}

// CheckVersions accepts content information versions 1 and 2, each once.
func CheckVersions(v []int) error {
	for i, x := range v {
		if x != 1 && x != 2 {
			return fmt.Errorf("%w: content information version %d: expected 1 (Windows 7 clients) or 2 (Windows 8 and later)", ErrInvalidSpec, x)
		}
		if slices.Contains(v[:i], x) {
			return fmt.Errorf("%w: content information version %d listed twice", ErrInvalidSpec, x)
		}
	}
	return nil
}

func redactURL(u *url.URL) string {
	c := *u
	c.User = nil
	return c.String()
}

// Job is a preload job as the API shows it and the state file keeps it.
type Job struct {
	ID     string `json:"id"`
	Source string `json:"source"`
	Spec
	State State `json:"state"`
	// Error is why the last attempt failed (kept while it retries).
	Error    string `json:"error,omitempty"`
	Attempts int    `json:"attempts"`
	// Next is when the job runs again: the next attempt (retrying), the
	// window's opening (paused), the next check (a completed config job).
	Next     time.Time `json:"next,omitzero"`
	Created  time.Time `json:"created"`
	Started  time.Time `json:"started,omitzero"`
	Finished time.Time `json:"finished,omitzero"`

	// What the origin said: the content's size and validator, the
	// segments of each version.
	Size     uint64 `json:"size"`
	ETag     string `json:"etag,omitempty"`
	Segments int    `json:"segments"`
	// Blocks are the units stored (V1 blocks and V2 segments, every
	// version); Bytes their total, which is Size times the versions.
	Blocks     int    `json:"blocks"`
	BlocksHeld int    `json:"blocks_held"`
	Bytes      uint64 `json:"bytes"`
	BytesHeld  uint64 `json:"bytes_held"`
	// Progress is BytesHeld/Bytes (0 to 1).
	Progress float64 `json:"progress"`
	// FetchedBytes counts the bytes read from the origin over all
	// attempts (the WAN cost); RemainingBytes is what the current attempt
	// still has to fetch.
	FetchedBytes   uint64 `json:"fetched_bytes"`
	RemainingBytes uint64 `json:"remaining_bytes"`
	// RateBits is the fetch rate over the last seconds (bits per second);
	// ETASeconds the time left at that rate (0: unknown or done).
	RateBits   float64 `json:"rate_bits_per_second"`
	ETASeconds float64 `json:"eta_seconds,omitempty"`
}

// meter measures a byte rate over the last few seconds.
type meter struct {
	samples []sample // at most one per meterStep, the last meterSpan
	total   uint64
}

type sample struct {
	at    time.Time
	total uint64
}

const (
	meterStep = 250 * time.Millisecond
	meterSpan = 5 * time.Second
)

func (m *meter) add(now time.Time, n int) {
	m.total += uint64(n)
	m.mark(now)
}

func (m *meter) mark(now time.Time) {
	if k := len(m.samples); k == 0 || now.Sub(m.samples[k-1].at) >= meterStep {
		m.samples = append(m.samples, sample{now, m.total})
	} else {
		m.samples[k-1].total = m.total
	}
	cut := 0
	for cut < len(m.samples)-1 && now.Sub(m.samples[cut+1].at) >= meterSpan {
		cut++
	}
	m.samples = m.samples[cut:]
}

// rate returns bytes per second since the oldest sample kept.
func (m *meter) rate(now time.Time) float64 {
	m.mark(now)
	if len(m.samples) == 0 {
		return 0
	}
	first := m.samples[0]
	d := now.Sub(first.at).Seconds()
	if d < 0.5 {
		return 0 // too early to say
	}
	return float64(m.total-first.total) / d
}

func (m *meter) reset() { m.samples, m.total = nil, 0 }
