package appliance

import (
	"log/slog"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/outpost-appliance/outpost/cache/hostedcache"
	"github.com/outpost-appliance/outpost/cache/preload"
	"github.com/outpost-appliance/outpost/firmware/events"
	"github.com/outpost-appliance/outpost/peerdist/pccrc"
)

// PreloadStateFile is where the preload jobs are kept, under the data
// directory.
const PreloadStateFile = "preload/jobs.json"

// preloadService is the preload service of the configuration
// ([preloading], [[preload]]): it stores into the hosted cache's store,
// so it starts after the hosted cache, and its jobs are events.
func preloadService(opts Options, hosted *hostedcache.Service, evlog *events.Log, log *slog.Logger) *preload.Service {
	cfg := opts.Config
	log = log.With("service", "preload")
	var secret []byte
	if s, err := cfg.Preloading.ResolveContentSecret(); err != nil {
		// Load checked the file; it went away since. Inject is refused.
		log.Error("content server secret unreadable; outpost inject is refused", "err", err)
	} else if s.IsSet() {
		secret = pccrc.PassphraseSecret(s.Reveal())
	}
	entries := make([]preload.Spec, len(cfg.Preload))
	for i, e := range cfg.Preload {
		entries[i] = preload.Spec{URL: e.URL, Versions: e.Versions, Limit: e.Limit, Window: e.Window}
	}
	recheck := time.Duration(cfg.Preloading.Recheck)
	if recheck == 0 {
		recheck = -1 // never
	}
	return preload.New(preload.Options{
		StateFile: filepath.Join(opts.DataDir, PreloadStateFile),
		Store: func() preload.Store {
			if st := hosted.Store(); st != nil {
				return st
			}
			return nil // not a typed nil
		},
		Limit:     cfg.Preloading.Limit,
		Versions:  cfg.Preloading.Versions,
		MaxActive: cfg.Preloading.MaxActive,
		Entries:   entries,
		Recheck:   recheck,
		Secret:    secret,
		UserAgent: "outpost-preload/" + opts.Version,
		Observer:  preloadEvents{evlog},
		Logger:    log,
	})
}

// preloadEvents turns what preload jobs and injections do into events
// (docs/events.md, 150-157).
type preloadEvents struct{ log *events.Log }

func jobFields(j preload.Job) events.Fields {
	return events.Fields{"job": j.ID, "url": j.URL}
}

func (e preloadEvents) PreloadStarted(j preload.Job) {
	f := jobFields(j)
	versions := make([]string, len(j.Versions))
	for i, v := range j.Versions {
		versions[i] = strconv.Itoa(v)
	}
	f["versions"], f["source"] = strings.Join(versions, ","), j.Source
	e.log.Log(events.PreloadStarted, f)
}

func (e preloadEvents) PreloadCompleted(j preload.Job) {
	f := jobFields(j)
	f["size"], f["fetched_bytes"], f["blocks"] = j.Size, j.FetchedBytes, j.Blocks
	e.log.Log(events.PreloadCompleted, f)
}

func (e preloadEvents) PreloadFailed(j preload.Job, final bool) {
	f := jobFields(j)
	f["attempts"], f["error"] = j.Attempts, j.Error
	if final {
		e.log.Log(events.PreloadFailed, f)
		return
	}
	f["next"] = j.Next.UTC().Format(time.RFC3339)
	e.log.Log(events.PreloadRetrying, f)
}

func (e preloadEvents) PreloadPaused(j preload.Job) {
	f := jobFields(j)
	f["window"], f["opens"] = j.Window.String(), j.Next.UTC().Format(time.RFC3339)
	e.log.Log(events.PreloadPaused, f)
}

func (e preloadEvents) PreloadCancelled(j preload.Job) {
	e.log.Log(events.PreloadCancelled, jobFields(j))
}

func (e preloadEvents) InjectCompleted(r preload.InjectResult) {
	e.log.Log(events.InjectCompleted, events.Fields{"name": r.Name, "version": r.Version, "size": r.Size, "stored": r.Stored, "bytes": r.Bytes})
}

func (e preloadEvents) InjectRefused(name string, err error) {
	e.log.Log(events.InjectRefused, events.Fields{"name": name, "error": err.Error()})
}
