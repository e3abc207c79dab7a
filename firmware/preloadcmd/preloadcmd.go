// Package preloadcmd implements `outpost preload`: ask a running outpost,
// over its management API, to pre-stage a URL from a BranchCache-enabled
// server now, and show the job's progress until it completes; also list
// and cancel preload jobs.
package preloadcmd

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/outpost-appliance/outpost/cache/preload"
	"github.com/outpost-appliance/outpost/cache/preload/bandwidth"
	"github.com/outpost-appliance/outpost/cache/preload/window"
	"github.com/outpost-appliance/outpost/firmware/api"
	"github.com/outpost-appliance/outpost/firmware/cli"
)

const usage = `usage: outpost preload URL [--limit RATE] [--version 2|1|1,2] [--window HH:MM-HH:MM] [--no-wait] [--json]
       outpost preload --list [--json]
       outpost preload --cancel ID
  common: [--api URL] [--token TOKEN]

Asks a running outpost to pre-stage URL, a file on a BranchCache-enabled
server (IIS, a BITS server, outpost origin), now: it fetches the content
information, downloads with Range requests only the blocks it does not
hold, verifies every block and stores it. A progress bar shows until the
job completes; Ctrl-C stops watching, the job goes on (--cancel stops it).

  --limit RATE    bandwidth of this job, e.g. 20Mbit/s or 2.5MB/s (default:
                  only the appliance's [preloading] limit)
  --version V     content information to pre-stage: 2 (Windows 8 and
                  later), 1 (Windows 7) or 1,2 (default: the appliance's
                  [preloading] versions)
  --window W      run only within this daily window, e.g. 01:00-05:00
  --no-wait       queue the job and return
  --json          print the job (or the list) as JSON, no progress bar
  --list          list the preload jobs
  --cancel ID     cancel a job
  --api URL       the appliance's API (default ` + api.DefaultURL + `)
  --token TOKEN   bearer token (default $OUTPOST_TOKEN)

Exit status: 0 completed, 1 the job failed or was cancelled, 2 usage,
3 the API could not be used.
`

// Run executes `outpost preload` and returns the exit code.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("outpost preload", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage) }
	apiURL := fs.String("api", api.DefaultURL, "")
	token := fs.String("token", os.Getenv("OUTPOST_TOKEN"), "")
	limitText := fs.String("limit", "", "")
	versionText := fs.String("version", "", "")
	windowText := fs.String("window", "", "")
	noWait := fs.Bool("no-wait", false, "")
	asJSON := fs.Bool("json", false, "")
	list := fs.Bool("list", false, "")
	cancel := fs.String("cancel", "", "")
	interval := fs.Duration("interval", time.Second, "how often progress is read")
	positional, err := cli.ParseFlags(fs, args)
	if err == nil && len(positional) == 1 && positional[0] == "help" {
		fmt.Fprint(stdout, usage)
		return cli.ExitOK
	}
	var spec preload.Spec
	if err == nil {
		spec, err = parseSpec(positional, *limitText, *versionText, *windowText, *list || *cancel != "")
	}
	if err == nil && *interval <= 0 {
		err = cli.Usagef("--interval must be positive")
	}
	if err != nil {
		return cli.ExitCode(err, "outpost preload", usage, stderr)
	}
	client := &api.Client{BaseURL: *apiURL, Token: *token}
	switch {
	case *list:
		err = listJobs(ctx, client, stdout, *asJSON)
	case *cancel != "":
		var j *preload.Job
		if j, err = client.CancelPreload(ctx, *cancel); err == nil {
			fmt.Fprintf(stdout, "cancelled %s (%s)\n", j.ID, j.URL)
		}
	default:
		err = preloadNow(ctx, client, spec, stdout, *asJSON, *noWait, *interval)
	}
	var apiErr *api.APIError
	if errors.As(err, &apiErr) && apiErr.Code >= 400 && apiErr.Code < 500 && apiErr.Code != 401 && apiErr.Code != 403 && apiErr.Code != 429 {
		err = cli.FailedError{Err: err}
	}
	return cli.ExitCode(err, "outpost preload", usage, stderr)
}

func parseSpec(positional []string, limitText, versionText, windowText string, noURL bool) (preload.Spec, error) {
	var spec preload.Spec
	switch {
	case noURL && len(positional) > 0:
		return spec, cli.Usagef("--list and --cancel take no URL")
	case noURL:
		return spec, nil
	case len(positional) != 1:
		return spec, cli.Usagef("expected one URL")
	}
	spec.URL = positional[0]
	var err error
	if limitText != "" {
		if spec.Limit, err = bandwidth.ParseRate(limitText); err != nil {
			return spec, cli.Usagef("--limit: %v", err)
		}
	}
	if windowText != "" {
		if spec.Window, err = window.Parse(windowText); err != nil {
			return spec, cli.Usagef("--window: %v", err)
		}
	}
	if versionText != "" {
		for _, f := range strings.Split(versionText, ",") {
			v, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil {
				return spec, cli.Usagef("--version %q: expected 1, 2 or 1,2", versionText)
			}
			spec.Versions = append(spec.Versions, v)
		}
	}
	if err := spec.Validate(); err != nil {
		return spec, cli.Usagef("%v", err)
	}
	return spec, nil
}

func preloadNow(ctx context.Context, client *api.Client, spec preload.Spec, stdout io.Writer, asJSON, noWait bool, interval time.Duration) error {
	j, added, err := client.AddPreload(ctx, spec)
	if err != nil {
		return err
	}
	if !asJSON {
		what := "queued as job"
		if !added {
			what = "already under way as job"
		}
		fmt.Fprintf(stdout, "%s %s %s\n", spec.URL, what, j.ID)
	}
	bar := newProgress(stdout, !asJSON && !noWait)
	for !noWait && !j.State.Finished() {
		bar.show(j)
		select {
		case <-ctx.Done():
			bar.done()
			fmt.Fprintf(stdout, "stopped watching; job %s goes on (outpost preload --cancel %s stops it)\n", j.ID, j.ID)
			return nil
		case <-time.After(interval):
		}
		if j, _, err = client.PreloadJob(ctx, j.ID); err != nil {
			bar.done()
			return err
		}
	}
	bar.show(j)
	bar.done()
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(j); err != nil {
			return err
		}
	}
	switch j.State {
	case preload.Failed:
		return cli.FailedError{Err: fmt.Errorf("job %s: %s", j.ID, j.Error)}
	case preload.Cancelled:
		return cli.FailedError{Err: fmt.Errorf("job %s was cancelled", j.ID)}
	case preload.Completed:
		if !asJSON {
			fmt.Fprintf(stdout, "completed: %s held (%d blocks, verified); %s fetched from the origin\n",
				api.FormatBytes(j.Bytes), j.BlocksHeld, api.FormatBytes(j.FetchedBytes))
		}
	}
	return nil
}

func listJobs(ctx context.Context, client *api.Client, stdout io.Writer, asJSON bool) error {
	list, raw, err := client.PreloadJobs(ctx)
	if err != nil {
		return err
	}
	if asJSON {
		_, err := stdout.Write(raw)
		return err
	}
	api.WritePreload(stdout, list)
	return nil
}

// progress draws the job's progress: one line redrawn in place on a
// terminal, a line per change of state or every ten seconds otherwise.
type progress struct {
	w        io.Writer
	on, tty  bool
	drawn    bool
	last     time.Time
	lastSeen preload.State
}

func newProgress(w io.Writer, on bool) *progress {
	tty := false
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			tty = true
		}
	}
	return &progress{w: w, on: on, tty: tty}
}

func (p *progress) show(j *preload.Job) {
	if !p.on {
		return
	}
	const width = 24
	filled := int(j.Progress*width + 0.5)
	filled = max(0, min(width, filled))
	line := fmt.Sprintf("[%s%s] %5.1f%%  %s of %s", strings.Repeat("#", filled), strings.Repeat(".", width-filled), j.Progress*100,
		api.FormatBytes(j.BytesHeld), api.FormatBytes(j.Bytes))
	if d := api.PreloadJobDetail(j); d != "" {
		line += "  " + d
	}
	line += "  " + string(j.State)
	if p.tty {
		fmt.Fprintf(p.w, "\r\033[K%s", line)
		p.drawn = true
		return
	}
	if j.State != p.lastSeen || time.Since(p.last) >= 10*time.Second || j.State.Finished() {
		fmt.Fprintln(p.w, line)
		p.last, p.lastSeen = time.Now(), j.State
	}
}

func (p *progress) done() {
	if p.drawn {
		fmt.Fprintln(p.w)
		p.drawn = false
	}
}
