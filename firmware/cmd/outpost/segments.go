package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/outpost-appliance/outpost/firmware/api"
	"github.com/outpost-appliance/outpost/firmware/report"
)

const segmentsUsage = `usage: outpost segments [--api URL] [--token TOKEN] [--json] [--limit N] [--after ID] [--all]
       outpost segments --purge ID [--api URL] [--token TOKEN]

Lists the segments a running outpost holds (ID, content version, size,
blocks held, verified or replay, first seen, last access, hits, content
tags), after a summary of the cache; or purges one segment.

  --api URL      the instance's API (default ` + api.DefaultURL + `)
  --token TOKEN  bearer token (default $OUTPOST_TOKEN); needed for --purge,
                 and for reads when anonymous reads are off
  --json         print the API's JSON instead of a table
  --limit N      segments per page (default 50)
  --after ID     start after this segment ID (the cursor a page ends with)
  --all          every segment, page after page
  --purge ID     delete this segment from the store
`

// runSegments is `outpost segments`.
func runSegments(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("segments", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, segmentsUsage) }
	url := fs.String("api", api.DefaultURL, "")
	token := fs.String("token", os.Getenv("OUTPOST_TOKEN"), "")
	asJSON := fs.Bool("json", false, "")
	limit := fs.Int("limit", 50, "")
	after := fs.String("after", "", "")
	all := fs.Bool("all", false, "")
	purge := fs.String("purge", "", "")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 || *limit < 1 || *limit > 1000 {
		fmt.Fprint(stderr, segmentsUsage)
		return 2
	}
	client := &api.Client{BaseURL: *url, Token: *token}
	if *purge != "" {
		if _, err := report.ParseID(*purge); err != nil {
			fmt.Fprintf(stderr, "outpost segments: --purge: %v\n", err)
			return 2
		}
		if err := client.DeleteSegment(ctx, *purge); err != nil {
			fmt.Fprintf(stderr, "outpost segments: %v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "purged %s\n", *purge)
		return 0
	}

	var segs []report.Segment
	cursor, next := *after, ""
	for {
		page, _, err := client.Segments(ctx, cursor, *limit)
		if err != nil {
			fmt.Fprintf(stderr, "outpost segments: %v\n", err)
			return 1
		}
		segs = append(segs, page.Segments...)
		next = page.Next
		if !*all || next == "" {
			break
		}
		cursor = next
	}
	if *asJSON {
		out, _ := json.MarshalIndent(report.SegmentPage{Segments: segs, Next: next}, "", "  ")
		fmt.Fprintf(stdout, "%s\n", out)
		return 0
	}
	if cache, _, err := client.Cache(ctx); err == nil {
		api.WriteCacheSummary(stdout, cache)
		fmt.Fprintln(stdout)
	}
	if len(segs) == 0 {
		fmt.Fprintln(stdout, "no segments")
		return 0
	}
	if err := api.WriteSegments(stdout, segs, time.Now()); err != nil {
		fmt.Fprintf(stderr, "outpost segments: %v\n", err)
		return 1
	}
	if next != "" {
		fmt.Fprintf(stdout, "\nmore: outpost segments --after %s (or --all)\n", next)
	}
	return 0
}
