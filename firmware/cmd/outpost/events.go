package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"strconv"
	"time"

	"github.com/outpost-appliance/outpost/firmware/api"
)

const eventsUsage = `usage: outpost events [--id N[,N…]] [--since WHEN] [--until WHEN] [--limit N]
                      [--api URL] [--token TOKEN] [--json]

Prints the event log of a running outpost, oldest first (the latest last).
Event IDs are listed in docs/events.md (4 service failed, 14 pull failed,
110 segments evicted, 111 disk low, 120 API authentication failed, …).

  --id N         only events with this ID (repeat or comma-separate)
  --since WHEN   only events at or after WHEN: a duration ago (90m, 12h,
                 7d) or an RFC 3339 time (2026-03-01T08:00:00Z)
  --until WHEN   only events before WHEN
  --limit N      the latest N events (default 50, at most 1000)
  --api URL      the instance's API (default ` + api.DefaultURL + `)
  --token TOKEN  bearer token (default $OUTPOST_TOKEN), when anonymous
                 reads are off
  --json         print the API's JSON (newest first) instead of a table
`

// idFlags collects repeated --id flags.
type idFlags []string

func (i *idFlags) String() string     { return fmt.Sprint(*i) }
func (i *idFlags) Set(s string) error { *i = append(*i, s); return nil }

// runEvents is `outpost events`.
func runEvents(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("events", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, eventsUsage) }
	apiURL := fs.String("api", api.DefaultURL, "")
	token := fs.String("token", os.Getenv("OUTPOST_TOKEN"), "")
	asJSON := fs.Bool("json", false, "")
	var ids idFlags
	fs.Var(&ids, "id", "")
	since := fs.String("since", "", "")
	until := fs.String("until", "", "")
	limit := fs.Int("limit", 50, "")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprint(stderr, eventsUsage)
		return 2
	}
	q := url.Values{"limit": {strconv.Itoa(*limit)}}
	if len(ids) > 0 {
		q["id"] = ids
	}
	if *since != "" {
		q.Set("since", *since)
	}
	if *until != "" {
		q.Set("until", *until)
	}
	// The server would say the same; checking here gives a usage error.
	if _, err := api.ParseEventQuery(ids, *since, *until, "", q.Get("limit"), time.Now()); err != nil {
		fmt.Fprintf(stderr, "outpost events: %v\n\n%s", err, eventsUsage)
		return 2
	}
	client := &api.Client{BaseURL: *apiURL, Token: *token}
	page, raw, err := client.Events(ctx, q)
	if err != nil {
		fmt.Fprintf(stderr, "outpost events: %v\n", err)
		return 1
	}
	if *asJSON {
		stdout.Write(raw)
		return 0
	}
	if len(page.Events) == 0 {
		fmt.Fprintln(stdout, "no events")
		return 0
	}
	if err := api.WriteEvents(stdout, page.Events); err != nil {
		fmt.Fprintf(stderr, "outpost events: %v\n", err)
		return 1
	}
	return 0
}
