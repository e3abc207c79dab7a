package preload

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/outpost-appliance/outpost/peerdist/pccrc"
)

// Errors of injection.
var (
	// ErrInjectDisabled: the appliance has no content server secret to
	// check injected content information against.
	ErrInjectDisabled = errors.New("inject is refused: this appliance has no content server secret to check content information against; set [preloading] content_secret or content_secret_file to the secret of the content servers (netsh branchcache set key, `outpost origin --secret`)")
	// ErrWrongSecret: the content information was made with another
	// secret: its segment IDs are not the ones clients will ask for.
	ErrWrongSecret = errors.New("the content information was not made with this appliance's content server secret, so its segment IDs are not those clients will ask for: check the secret given to outpost inject against [preloading] content_secret")
	// ErrNoSession: the session is unknown (expired, or the appliance
	// restarted): send the content information again.
	ErrNoSession = errors.New("unknown inject session (expired, or the appliance restarted): send the content information again")
)

// Session limits: an upload goes quiet for at most sessionIdle between
// requests; at most maxSessions are kept (the least recently used goes).
const (
	sessionIdle = time.Hour
	maxSessions = 16
)

// Injector stores content uploaded with its content information (the
// API's inject endpoints): Begin checks the content information and says
// which byte ranges are missing; Put stores a range's verified units.
type Injector struct {
	Store    func() Store
	Secret   []byte
	Observer Observer
	Logger   *slog.Logger
	Now      func() time.Time

	mu       sync.Mutex
	sessions map[string]*session
	stats    InjectStats
}

// InjectStats count injections since the start.
type InjectStats struct {
	// Blocks and Bytes stored from uploads; Refused uploads (wrong
	// secret, data that does not match).
	Blocks, Bytes, Refused uint64
	// Completed sessions: every unit of their content is held.
	Completed uint64
}

// Range is a byte range [Start, End) of content.
type Range struct {
	Start uint64 `json:"start"`
	End   uint64 `json:"end"`
}

// InjectPlan answers Begin: what the appliance still lacks of the content.
type InjectPlan struct {
	Session  string `json:"session"`
	Name     string `json:"name,omitempty"`
	Version  int    `json:"version"`
	Size     uint64 `json:"size"`
	Segments int    `json:"segments"`
	// Blocks are V1 blocks or V2 segments.
	Blocks     int `json:"blocks"`
	BlocksHeld int `json:"blocks_held"`
	// Missing are the byte ranges to send (each a run of whole units).
	Missing      []Range `json:"missing"`
	MissingBytes uint64  `json:"missing_bytes"`
	Complete     bool    `json:"complete"`
}

// InjectResult answers Put (and is what InjectCompleted reports).
type InjectResult struct {
	Session string `json:"session"`
	Name    string `json:"name,omitempty"`
	Version int    `json:"version"`
	Size    uint64 `json:"size"`
	// Stored units from this request; Bytes their size.
	Stored int    `json:"stored"`
	Bytes  uint64 `json:"bytes"`
	// Remaining units of the content not yet held; Complete when none.
	Remaining int  `json:"remaining"`
	Complete  bool `json:"complete"`
	// StoredTotal units over the session.
	StoredTotal int `json:"stored_total"`
}

type session struct {
	id, name string
	c        *content
	ingest   *ingest
	missing  []unit // sorted by start
	done     []bool
	left     int
	stored   int
	bytes    uint64
	used     time.Time
}

func (in *Injector) now() time.Time {
	if in.Now == nil {
		return time.Now()
	}
	return in.Now()
}

func (in *Injector) logger() *slog.Logger {
	if in.Logger == nil {
		return slog.Default()
	}
	return in.Logger
}

func (in *Injector) store() Store {
	if in.Store == nil {
		return nil
	}
	return in.Store()
}

func (in *Injector) refused(name string, err error) error {
	in.mu.Lock()
	in.stats.Refused++
	in.mu.Unlock()
	in.logger().Warn("inject refused", "name", name, "err", err)
	if in.Observer != nil {
		in.Observer.InjectRefused(name, err)
	}
	return err
}

// Begin checks uploaded content information (it describes a whole file,
// was made with the content server's secret), records its hashes, and
// says which byte ranges the store lacks. name is for logs.
func (in *Injector) Begin(ctx context.Context, name string, raw []byte) (InjectPlan, error) {
	st := in.store()
	if st == nil {
		return InjectPlan{}, ErrNotRunning
	}
	if len(in.Secret) == 0 {
		return InjectPlan{}, in.refused(name, ErrInjectDisabled)
	}
	ci, err := pccrc.Parse(raw)
	if err != nil {
		return InjectPlan{}, &PermanentError{Err: fmt.Errorf("content information: %w", err)}
	}
	_, size := ci.Range()
	if err := checkWhole(ci, size); err != nil {
		return InjectPlan{}, &PermanentError{Err: fmt.Errorf("content information: %w", err)}
	}
	if err := ci.CheckSecrets(in.Secret); err != nil {
		return InjectPlan{}, in.refused(name, fmt.Errorf("%w (%v)", ErrWrongSecret, err))
	}
	c := newContent(ci)
	missing, t, err := plan(ctx, st, []*content{c})
	if err != nil {
		return InjectPlan{}, err
	}
	sum := sha256.Sum256(raw)
	s := &session{id: hex.EncodeToString(sum[:16]), name: name, c: c, missing: missing, done: make([]bool, len(missing)), left: len(missing), used: in.now()}
	s.ingest = &ingest{st: st, contents: []*content{c}}
	p := InjectPlan{Session: s.id, Name: name, Version: int(ci.Version), Size: size, Segments: len(ci.Segments),
		Blocks: t.units, BlocksHeld: t.heldUnits, Complete: len(missing) == 0}
	for _, iv := range intervals(missing) {
		p.Missing = append(p.Missing, Range{iv.start, iv.end})
		p.MissingBytes += iv.end - iv.start
	}
	in.mu.Lock()
	if in.sessions == nil {
		in.sessions = map[string]*session{}
	}
	in.pruneLocked()
	in.sessions[s.id] = s
	in.mu.Unlock()
	in.logger().Info("inject: content information accepted", "name", name, "session", s.id, "version", int(ci.Version),
		"size", size, "segments", len(ci.Segments), "blocks_held", t.heldUnits, "blocks", t.units, "missing_bytes", p.MissingBytes)
	if p.Complete {
		in.completed(s, size)
	}
	return p, nil
}

// pruneLocked drops idle sessions, and the least recently used beyond
// maxSessions - 1. in.mu is held.
func (in *Injector) pruneLocked() {
	now := in.now()
	for id, s := range in.sessions {
		if now.Sub(s.used) > sessionIdle {
			delete(in.sessions, id)
		}
	}
	for len(in.sessions) >= maxSessions {
		var oldest *session
		for _, s := range in.sessions {
			if oldest == nil || s.used.Before(oldest.used) {
				oldest = s
			}
		}
		delete(in.sessions, oldest.id)
	}
}

// Put reads content bytes [offset, offset+length) from r and stores every
// missing unit that lies wholly inside, verified against the session's
// content information. It streams: memory does not grow with length.
func (in *Injector) Put(ctx context.Context, id string, offset, length uint64, r io.Reader) (InjectResult, error) {
	st := in.store()
	if st == nil {
		return InjectResult{}, ErrNotRunning
	}
	in.mu.Lock()
	s := in.sessions[id]
	if s != nil {
		s.used = in.now()
	}
	in.mu.Unlock()
	if s == nil {
		return InjectResult{}, ErrNoSession
	}
	_, size := s.c.ci.Range()
	if offset > size || length > size-offset {
		return InjectResult{}, &PermanentError{Err: fmt.Errorf("bytes %d+%d are outside the content (%d bytes)", offset, length, size)}
	}
	end := offset + length
	// The missing units wholly inside the range, not stored yet.
	in.mu.Lock()
	first := sort.Search(len(s.missing), func(i int) bool { return s.missing[i].start >= offset })
	var units []unit
	var idx []int
	for i := first; i < len(s.missing) && s.missing[i].start < end; i++ {
		if u := s.missing[i]; u.end <= end && !s.done[i] {
			units = append(units, u)
			idx = append(idx, i)
		}
	}
	in.mu.Unlock()

	res := InjectResult{Session: s.id, Name: s.name, Version: int(s.c.ci.Version), Size: size}
	pos := 0
	deliver := func(ctx context.Context, u unit, data []byte) error {
		if err := s.ingest.deliver(ctx, u, data); err != nil {
			return err
		}
		for units[pos].start != u.start || units[pos].end != u.end {
			pos++
		}
		in.mu.Lock()
		if i := idx[pos]; !s.done[i] {
			s.done[i] = true
			s.left--
			s.stored++
			s.bytes += u.size()
			in.stats.Blocks++
			in.stats.Bytes += u.size()
		}
		in.mu.Unlock()
		res.Stored++
		res.Bytes += u.size()
		return nil
	}
	err := feed(ctx, r, offset, units, deliver)
	if err == nil {
		err = st.Sync(ctx)
	}
	in.mu.Lock()
	res.Remaining, res.StoredTotal = s.left, s.stored
	complete := s.left == 0
	in.mu.Unlock()
	res.Complete = complete
	var mm *MismatchError
	switch {
	case errors.As(err, &mm):
		return res, in.refused(s.name, &PermanentError{Err: fmt.Errorf("%w: the file differs from the one that was hashed (changed since, or read wrong)", err)})
	case err != nil:
		return res, err
	}
	if complete && res.Stored > 0 {
		in.completed(s, size)
	}
	return res, nil
}

// completed reports a session whose content is all held.
func (in *Injector) completed(s *session, size uint64) {
	in.mu.Lock()
	in.stats.Completed++
	r := InjectResult{Session: s.id, Name: s.name, Version: int(s.c.ci.Version), Size: size, Stored: s.stored, Bytes: s.bytes, Complete: true, StoredTotal: s.stored}
	in.mu.Unlock()
	in.logger().Info("inject completed", "name", s.name, "session", s.id, "version", r.Version, "size", size, "stored", s.stored, "bytes", s.bytes)
	if in.Observer != nil {
		in.Observer.InjectCompleted(r)
	}
}

// Stats returns the injection counters.
func (in *Injector) Stats() InjectStats {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.stats
}
