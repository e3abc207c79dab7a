package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/outpost-appliance/outpost/firmware/api"
)

const statusUsage = `usage: outpost status [--api URL] [--token TOKEN] [--json]

Prints the live state of a running outpost (appliance or daemon) from its
API: version, uptime, memory, configuration errors, services, interfaces,
the XDP fast path, the cache, peer leaders and preload jobs.

  --api URL      the instance's API (default ` + api.DefaultURL + `)
  --token TOKEN  bearer token (default $OUTPOST_TOKEN), when anonymous reads are off
  --json         print the raw JSON of GET /api/v1/status
`

// runStatus is `outpost status`.
func runStatus(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, statusUsage) }
	url := fs.String("api", api.DefaultURL, "")
	token := fs.String("token", os.Getenv("OUTPOST_TOKEN"), "")
	asJSON := fs.Bool("json", false, "")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	client := &api.Client{BaseURL: *url, Token: *token}
	st, raw, err := client.Status(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "outpost status: %v\n", err)
		return 1
	}
	if *asJSON {
		stdout.Write(raw)
		return 0
	}
	if err := api.WriteStatus(stdout, st, time.Now()); err != nil {
		fmt.Fprintf(stderr, "outpost status: %v\n", err)
		return 1
	}
	if cache, _, err := client.Cache(ctx); err == nil {
		fmt.Fprintln(stdout)
		api.WriteCacheSummary(stdout, cache)
	}
	if leaders, _, err := client.Leaders(ctx); err == nil && len(leaders.Peers) > 0 {
		fmt.Fprintln(stdout)
		api.WriteLeaders(stdout, leaders, time.Now())
	}
	if jobs, _, err := client.PreloadJobs(ctx); err == nil && len(jobs.Jobs) > 0 {
		fmt.Fprintln(stdout)
		api.WritePreload(stdout, jobs)
	}
	if st.Config.SafeMode {
		return 3 // scripts can tell a box in safe mode
	}
	return 0
}
