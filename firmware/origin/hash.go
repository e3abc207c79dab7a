package origin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/outpost-appliance/outpost/peerdist/pccrc"
)

// Content information is computed by jobs, at most one per (path,
// version) at a time (single flight): a job hashes whatever version of the
// file it finds, after the file has settled (see stamp.settleWait), and
// checks that the file's stamp did not change while it read. Background
// jobs share HashWorkers slots; jobs that a request waits for (files up to
// InlineHashLimit) have slots of their own, so they never queue behind a
// large file.
type job struct {
	inline bool
	done   chan struct{} // closed when entry or err is set
	entry  *entry
	err    error
}

const (
	// maxHashAttempts bounds how often a file that changes while it is
	// being hashed is tried again within one job.
	maxHashAttempts = 3
	// maxSettleWaits bounds the waits for a file to settle within one
	// job; a file written to continuously is given up on and tried again
	// at a later request.
	maxSettleWaits = 20
	// inlineWait bounds how long a request waits for an inline job
	// before it serves the content plainly.
	inlineWait = 10 * time.Second
)

var (
	errChanging = errors.New("the file kept changing while it was hashed")
	errEmpty    = errors.New("an empty file has no content information; it is always served plainly")
	errClosed   = errors.New("origin: server closed")
)

// lookup returns the content information of k for the file version st
// from memory or from the cache directory.
func (s *Server) lookup(k cacheKey, st stamp) (*entry, error) {
	if e, err := s.mem.get(k, st); err == nil {
		return e, nil
	}
	e, err := s.disk.load(k.rel, k.version, st)
	switch {
	case err == nil:
		s.stats.diskHits.Add(1)
		s.mem.put(k, e)
		return e, nil
	case errors.Is(err, errDamaged):
		s.stats.damaged.Add(1)
		s.log.Warn("origin: damaged cache entry removed; recomputing", "path", k.rel, "version", int(k.version), "err", err)
	case errors.Is(err, errNotCached), errors.Is(err, errStaleEntry):
	default:
		s.log.Warn("origin: reading the cache", "path", k.rel, "err", err)
	}
	return nil, err
}

// startJob returns the job computing k, starting one if none runs.
func (s *Server) startJob(k cacheKey, inline bool) *job {
	s.mu.Lock()
	defer s.mu.Unlock()
	if j, ok := s.jobs[k]; ok {
		return j
	}
	j := &job{inline: inline, done: make(chan struct{})}
	if s.ctx.Err() != nil {
		j.err = errClosed
		close(j.done)
		return j
	}
	s.jobs[k] = j
	s.wg.Go(func() {
		e, err := s.hash(s.ctx, k, inline)
		j.entry, j.err = e, err
		s.mu.Lock()
		delete(s.jobs, k)
		s.mu.Unlock()
		close(j.done)
	})
	return j
}

// hash computes the content information of the current version of k's
// file and stores it in memory and in the cache directory.
func (s *Server) hash(ctx context.Context, k cacheKey, inline bool) (*entry, error) {
	settles := 0
	for attempt := 1; ; {
		f, fi, err := s.openRegular(k.rel)
		if err != nil {
			return nil, fmt.Errorf("origin: hash %s: %w", k.rel, err)
		}
		st := stampOf(fi)
		if e, err := s.lookup(k, st); err == nil {
			f.Close()
			return e, nil
		}
		if st.Size == 0 {
			f.Close()
			return nil, fmt.Errorf("origin: hash %s: %w", k.rel, errEmpty)
		}
		if wait := st.settleWait(time.Now(), s.opts.MinFileAge); wait > 0 && settles < maxSettleWaits {
			f.Close()
			settles++
			if err := sleep(ctx, wait); err != nil {
				return nil, err
			}
			continue
		}
		e, err := s.generateLimited(ctx, f, k, st, inline)
		f.Close()
		if errors.Is(err, errChanging) && attempt < maxHashAttempts {
			s.log.Debug("origin: file changed while hashed; trying again", "path", k.rel)
			attempt++
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("origin: hash %s: %w", k.rel, err)
		}
		if err := s.disk.store(k.rel, e); err != nil {
			s.log.Warn("origin: content information not saved (kept in memory)", "path", k.rel, "err", err)
		}
		s.mem.put(k, e)
		return e, nil
	}
}

// generateLimited takes a hashing slot and computes the content
// information of the open file f, whose stamp was st before reading.
func (s *Server) generateLimited(ctx context.Context, f *os.File, k cacheKey, st stamp, inline bool) (*entry, error) {
	slots := s.bgSlots
	if inline {
		slots = s.inlineSlots
	}
	select {
	case slots <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	begin := time.Now()
	e, err := generate(ctx, f, k.version, st, s.opts.Secret)
	<-slots
	if err == nil {
		// A write during reading changes the stamp: the timestamps move to
		// a later tick than the settled ones taken before.
		var fi fs.FileInfo
		if fi, err = f.Stat(); err == nil && stampOf(fi) != st {
			err = errChanging
		}
	}
	if err != nil {
		s.stats.hashFailures.Add(1)
		return nil, err
	}
	s.stats.hashRuns.Add(1)
	took := time.Since(begin)
	s.log.Info("origin: hashed", "path", k.rel, "version", int(k.version), "bytes", st.Size,
		"seconds", took.Seconds(), "mb_per_s", float64(st.Size)/1e6/max(took.Seconds(), 1e-9))
	return e, nil
}

// generate computes the content information of the whole file f as a
// BranchCache content server does: V1 with SHA-256 (the only hash Windows
// retrieval accepts, protocols.md §7) and dwReadBytesInLastSegment 0 as
// IIS sends it; V2 with IIS's zero header fields.
func generate(ctx context.Context, f *os.File, v pccrc.Version, st stamp, secret []byte) (*entry, error) {
	// One byte beyond the stamp's size, so a file that grew is seen.
	r := io.NewSectionReader(f, 0, st.Size+1)
	var info *pccrc.Info
	var err error
	switch v {
	case pccrc.V1:
		info, err = pccrc.GenerateV1(ctx, r, pccrc.SHA256, secret)
		if err == nil {
			info.ReadBytesInLastSegment = 0
		}
	case pccrc.V2:
		info, err = pccrc.GenerateV2(ctx, r, secret)
	default:
		err = fmt.Errorf("content information version %d", v)
	}
	if err != nil {
		return nil, err
	}
	if checkWhole(info, st.Size) != nil {
		return nil, errChanging
	}
	raw, err := info.MarshalBinary()
	if err != nil {
		return nil, err
	}
	return &entry{stamp: st, version: v, raw: raw, info: info}, nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// WaitHashed makes sure the content information of relPath (relative to
// the served directory, '/'-separated) in version v exists for the file as
// it is now, computing it if needed, and returns when it does. A file that
// changes meanwhile is waited for again.
func (s *Server) WaitHashed(ctx context.Context, relPath string, v pccrc.Version) error {
	rel, _, err := cleanPath("/" + strings.TrimPrefix(relPath, "/"))
	if err != nil {
		return fmt.Errorf("origin: %s: %w", relPath, err)
	}
	if !s.versionEnabled(int(v)) {
		return fmt.Errorf("origin: content information version %d is not offered", v)
	}
	k := cacheKey{rel, v}
	for range 2 * maxHashAttempts {
		f, fi, err := s.openRegular(rel)
		if err != nil {
			return fmt.Errorf("origin: %s: %w", relPath, err)
		}
		f.Close()
		st := stampOf(fi)
		if _, err := s.lookup(k, st); err == nil {
			return nil
		}
		if st.Size == 0 {
			return fmt.Errorf("origin: %s: %w", relPath, errEmpty)
		}
		j := s.startJob(k, false)
		select {
		case <-j.done:
		case <-ctx.Done():
			return ctx.Err()
		}
		if j.err != nil {
			return j.err
		}
	}
	return fmt.Errorf("origin: %s: %w", relPath, errChanging)
}

// prehash hashes every servable file in every offered version, one at a
// time in the background slots, so that first requests find content
// information ready.
func (s *Server) prehash() {
	begin := time.Now()
	files := 0
	_ = fs.WalkDir(s.root.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if s.ctx.Err() != nil {
			return s.ctx.Err()
		}
		if err != nil {
			s.log.Warn("origin: prehash", "path", p, "err", err)
			return nil
		}
		if p != "." && strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			return nil
		}
		files++
		for _, v := range s.opts.Versions {
			err := s.WaitHashed(s.ctx, p, v)
			if err != nil && !errors.Is(err, errEmpty) && s.ctx.Err() == nil {
				s.log.Warn("origin: prehash", "path", p, "version", int(v), "err", err)
			}
		}
		return nil
	})
	if s.ctx.Err() == nil {
		s.log.Info("origin: prehash finished", "files", files, "seconds", time.Since(begin).Seconds())
	}
}
