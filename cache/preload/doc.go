// Package preload pre-stages BranchCache content into the appliance's
// segment store, so that a branch is warm before its first client asks.
//
// A preload job names a URL on a BranchCache-enabled origin (IIS, a
// BITS-enabled server, `outpost origin`). The job asks the origin for the
// content information with the PeerDist headers a Windows client sends
// (MS-PCCRTP, protocols.md §6): version 2.0 by default, as Windows 8 and
// later use it, and also (or only) 1.0 when the branch has Windows 7
// clients, whose segments have other IDs. It then downloads, with HTTP
// Range requests, only the bytes of the blocks (V1) and segments (V2) the
// store does not hold yet, verifies every one against the content
// information and stores it (store.PutPlainBlock): an interrupted or
// restarted job resumes from the blocks already held, and a job for
// content the cache has is nearly free. One pass over the bytes serves
// every version a job asks for.
//
// The WAN fetches go through token buckets (package bandwidth): one per
// job and one for all preloading, so the limit holds on the wire. A job
// may have a daily schedule window (package window) outside which it
// pauses. Jobs are kept in a state file, so a restart resumes queued and
// running ones; failed attempts are retried with backoff; progress, rate
// and ETA are reported to the API, the status page, the metrics and the
// log.
//
// Inject (inject.go) is the same ingestion fed from an upload instead of
// an origin: `outpost inject` computes content information for local
// files with the content server's secret and sends it and the data to the
// API, which checks the secret, verifies every block and stores it.
package preload
