// Package events is Outpost's numbered event log: what went wrong (or
// what an operator did) in a few dozen kinds, each with a stable ID that
// docs/events.md documents, modelled on the IDs Windows' BranchCache
// writes where one exists. Events are kept on the data partition, bounded,
// survive restarts, and are filterable by ID and time; the management API,
// the status page and `outpost events` read them.
package events

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// ID identifies a kind of event. IDs are a contract with admins' alerting
// rules: add IDs, never renumber one.
type ID int

// Event IDs (docs/events.md). Below 100 and from 6400: the Windows
// BranchCache event of the same meaning (Microsoft-Windows-BranchCache
// operational log; 64xx: its security-log events). From 100: Outpost's own.
const (
	Started            ID = 1    // Windows 1: the service started
	Stopped            ID = 2    // Windows 2: the service stopped
	ServiceFailed      ID = 4    // Windows 4: the service failed to start
	OfferNotCached     ID = 11   // Windows 11: content was not cached
	PullFailed         ID = 14   // Windows 14: a request sent to another client failed
	Suppressed         ID = 21   // Windows 21: N instance(s) of event ID X occurred
	ConfigError        ID = 100  // the configuration has errors: safe mode
	ServiceRecovered   ID = 101  // a failed service runs again
	SegmentsEvicted    ID = 110  // the store evicted segments
	DiskLow            ID = 111  // the data filesystem is below the free-space floor
	DiskFull           ID = 112  // blocks refused for lack of space
	CorruptBlocks      ID = 113  // stored blocks failed their checksum and were dropped
	SegmentPurged      ID = 114  // an operator deleted a segment
	StoreFlushed       ID = 115  // an operator emptied the store
	AuthFailed         ID = 120  // an API call with a bad or missing token
	PowerRequested     ID = 121  // reboot or power-off requested over the API
	LeaderUnreachable  ID = 130  // a peer leader stopped answering
	LeaderReachable    ID = 131  // a peer leader answers again
	LeaderAuthFailed   ID = 132  // a forwarded message failed authentication
	XDPUnavailable     ID = 140  // discovery runs without XDP on an interface
	PreloadStarted     ID = 150  // a preload job started fetching
	PreloadCompleted   ID = 151  // a preload job holds all its content
	PreloadFailed      ID = 152  // a preload job gave up
	PreloadPaused      ID = 153  // a preload job waits for its schedule window
	PreloadRetrying    ID = 154  // a preload attempt failed; it is retried
	PreloadCancelled   ID = 155  // an operator cancelled a preload job
	InjectCompleted    ID = 156  // injected content is all held
	InjectRefused      ID = 157  // an inject upload was refused
	VerificationFailed ID = 6401 // Windows 6401: invalid data from a peer, discarded
	OfferMalformed     ID = 6402 // Windows 6402: an offer message was malformed
)

// Level is how much an event matters.
type Level string

// Levels.
const (
	Info    Level = "info"
	Warning Level = "warning"
	Error   Level = "error"
)

// Definition describes one kind of event.
type Definition struct {
	ID      ID     `json:"id"`
	Name    string `json:"name"` // short, stable, kebab-case
	Level   Level  `json:"level"`
	Summary string `json:"summary"`
	// Windows names the Windows BranchCache event this one is modelled
	// on ("" for Outpost's own).
	Windows string `json:"windows,omitempty"`
}

// Catalog returns every event definition, by ID.
func Catalog() map[ID]Definition {
	defs := []Definition{
		{Started, "started", Info, "outpost started", "1 (service started)"},
		{Stopped, "stopped", Info, "outpost stopped", "2 (service stopped)"},
		{ServiceFailed, "service-failed", Error, "a service failed and is restarted with backoff (or given up, if the failure is permanent)", "4 (service failed to start)"},
		{OfferNotCached, "offer-not-cached", Warning, "an offer was not taken: the content will not be cached", "11 (content was not cached)"},
		{PullFailed, "pull-failed", Warning, "pulling offered content from a client failed", "14 (a request sent to another client failed)"},
		{Suppressed, "suppressed", Warning, "more events of one ID occurred than are logged one by one; this counts them", "21 (N instance(s) of event ID X occurred)"},
		{ConfigError, "config-error", Error, "the configuration has errors; running with safe defaults", ""},
		{ServiceRecovered, "service-recovered", Info, "a service that had failed is running again", ""},
		{SegmentsEvicted, "segments-evicted", Info, "the store evicted segments to stay within its bounds", ""},
		{DiskLow, "disk-low", Warning, "the data filesystem is below the free-space floor; the store evicts regardless of its limit", ""},
		{DiskFull, "disk-full", Error, "blocks were refused for lack of space on the data filesystem", ""},
		{CorruptBlocks, "corrupt-blocks", Warning, "stored blocks failed their checksum and were dropped (they are pulled again at the next offer)", ""},
		{SegmentPurged, "segment-purged", Info, "an operator deleted a segment over the API", ""},
		{StoreFlushed, "store-flushed", Warning, "an operator emptied the store over the API", ""},
		{AuthFailed, "auth-failed", Warning, "an API call was refused: bad or missing token", ""},
		{PowerRequested, "power-requested", Warning, "a reboot or power-off was requested over the API", ""},
		{LeaderUnreachable, "leader-unreachable", Warning, "a peer leader stopped answering", ""},
		{LeaderReachable, "leader-reachable", Info, "a peer leader answers again", ""},
		{LeaderAuthFailed, "leader-auth-failed", Warning, "a forwarded message failed authentication (wrong secret, replayed or too old) and was dropped", ""},
		{XDPUnavailable, "xdp-unavailable", Warning, "discovery runs without the XDP fast path on an interface", ""},
		{PreloadStarted, "preload-started", Info, "a preload job started fetching content from its origin", ""},
		{PreloadCompleted, "preload-completed", Info, "a preload job holds all its content: the branch is warm for it", ""},
		{PreloadFailed, "preload-failed", Error, "a preload job gave up (a permanent error, or too many failed attempts)", ""},
		{PreloadPaused, "preload-paused", Info, "a preload job waits outside its schedule window", ""},
		{PreloadRetrying, "preload-retrying", Warning, "a preload attempt failed; the job is retried after a backoff", ""},
		{PreloadCancelled, "preload-cancelled", Info, "an operator cancelled a preload job", ""},
		{InjectCompleted, "inject-completed", Info, "content injected over the API (outpost inject) is all held", ""},
		{InjectRefused, "inject-refused", Warning, "an inject upload was refused (content information not made with the content servers' secret, or data that does not match it)", ""},
		{VerificationFailed, "verification-failed", Warning, "a client sent a block that does not match its hash; it was discarded and nothing more is taken from that client for the segment", "6401 (received invalid data from a peer; data discarded)"},
		{OfferMalformed, "offer-malformed", Warning, "an offer message could not be used (malformed or inconsistent)", "6402 (the message offering data is incorrectly formatted)"},
	}
	out := make(map[ID]Definition, len(defs))
	for _, d := range defs {
		out[d.ID] = d
	}
	return out
}

// Lookup returns the definition of id; an unknown ID gets a generic one
// (so that events from newer firmware still read well).
func Lookup(id ID) Definition {
	if d, ok := Catalog()[id]; ok {
		return d
	}
	return Definition{ID: id, Name: fmt.Sprintf("event-%d", id), Level: Warning, Summary: fmt.Sprintf("event %d", id)}
}

// Fields are an event's details: a segment ID, a peer, an error, a count.
// Values should be strings, numbers or booleans.
type Fields map[string]any

// message renders a summary and fields as one line of text.
func message(summary string, fields Fields) string {
	if len(fields) == 0 {
		return summary
	}
	var b strings.Builder
	b.WriteString(summary)
	b.WriteString(":")
	for _, k := range slices.Sorted(maps.Keys(fields)) {
		v := fmt.Sprint(fields[k])
		if v == "" || strings.ContainsAny(v, " \t\n\"=") {
			v = strconv.Quote(v)
		}
		fmt.Fprintf(&b, " %s=%s", k, v)
	}
	return b.String()
}
