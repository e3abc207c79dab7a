package preload

import (
	"context"
	"errors"
	"fmt"

	"github.com/outpost-appliance/outpost/cache/preload/bandwidth"
	"github.com/outpost-appliance/outpost/peerdist/pccrc"
)

// maxChangedRetries is how often an attempt starts over at once because
// the content changed under it, before it counts as a failure.
const maxChangedRetries = 3

// attempt runs one attempt of a job: content information, plan, fetch.
func (s *Service) attempt(ctx context.Context, j *job, st Store) error {
	for changed := 0; ; changed++ {
		err := s.attemptOnce(ctx, j, st)
		if errors.Is(err, errChanged) && changed < maxChangedRetries && ctx.Err() == nil {
			s.log.Info("preload: the content changed on the origin; fetching its content information again", "job", j.ID, "url", j.URL)
			continue
		}
		if errors.Is(err, errChanged) {
			err = fmt.Errorf("%w while it was being fetched, %d times", errChanged, changed+1)
		}
		return err
	}
}

func (s *Service) attemptOnce(ctx context.Context, j *job, st Store) error {
	s.mu.Lock()
	versions, hashRequest, limiter := j.Versions, j.hashRequest, j.limiter
	s.mu.Unlock()
	o := &origin{
		client: s.client, url: j.URL, userAgent: s.opts.UserAgent,
		limiters: []*bandwidth.Limiter{limiter, s.total},
		fetched:  func(n int) { s.fetched(j, n) },
	}
	var answers []ciAnswer
	for _, v := range versions {
		a, err := o.contentInformation(ctx, pccrc.Version(v), hashRequest)
		if err != nil {
			return err
		}
		if len(answers) > 0 && (a.size != answers[0].size || a.validator() != answers[0].validator()) {
			return errChanged
		}
		answers = append(answers, a)
	}
	contents := make([]*content, len(answers))
	segments := 0
	for i, a := range answers {
		contents[i] = newContent(a.info)
		segments += len(a.info.Segments)
	}
	missing, t, err := plan(ctx, st, contents)
	if err != nil {
		return err
	}
	ivs := intervals(missing)
	s.mu.Lock()
	j.hashRequest = false
	j.Size, j.ETag, j.Segments = answers[0].size, answers[0].etag, segments
	j.Blocks, j.BlocksHeld, j.Bytes, j.BytesHeld = t.units, t.heldUnits, t.bytes, t.heldBytes
	j.RemainingBytes = totalBytes(ivs)
	s.dirty = true
	s.mu.Unlock()
	s.log.Debug("preload plan", "job", j.ID, "size", answers[0].size, "segments", segments, "units", t.units,
		"held", t.heldUnits, "missing", len(missing), "ranges", len(ivs), "bytes_to_fetch", totalBytes(ivs))

	in := &ingest{st: st, contents: contents, stored: func(u unit, fresh bool) { s.stored(j, u, fresh) }}
	next := 0 // missing[next:] are not stored yet
	for _, iv := range ivs {
		body, whole, err := o.openRange(ctx, answers[0], iv.start, iv.end)
		if err != nil {
			return err
		}
		end := next
		for end < len(missing) && missing[end].start < iv.end {
			end++
		}
		units, base := missing[next:end], iv.start
		if whole {
			// The origin ignores Range and sends everything: take all
			// that is missing from this one pass.
			units, base = missing[next:], 0
		}
		err = feed(ctx, body, base, units, in.deliver)
		body.Close()
		if err != nil {
			return annotate(err, iv)
		}
		if whole {
			break
		}
		next = end
	}
	if err := st.Sync(ctx); err != nil {
		return fmt.Errorf("storing: %w", err)
	}
	return nil
}

// annotate says which range an error happened in, unless it speaks for
// itself.
func annotate(err error, iv interval) error {
	var mm *MismatchError
	if errors.As(err, &mm) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return fmt.Errorf("bytes %d-%d: %w", iv.start, iv.end-1, err)
}

// fetched counts bytes read from an origin.
func (s *Service) fetched(j *job, n int) {
	now := s.clock.Now()
	s.mu.Lock()
	j.meter.add(now, n)
	j.FetchedBytes += uint64(n)
	j.RemainingBytes -= min(j.RemainingBytes, uint64(n))
	s.stats.fetchedBytes += uint64(n)
	s.mu.Unlock()
}

// stored counts a unit handed to the store.
func (s *Service) stored(j *job, u unit, fresh bool) {
	s.mu.Lock()
	j.BlocksHeld++
	j.BytesHeld += u.size()
	if fresh {
		s.stats.storedBlocks++
	}
	s.mu.Unlock()
}
