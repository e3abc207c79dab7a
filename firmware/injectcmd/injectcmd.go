// Package injectcmd implements `outpost inject`: compute content
// information for local files with the content servers' BranchCache
// secret (what 2Pint's cache-injection scripts do on Windows) and store
// the verified content in a running outpost over its API — for branches
// that receive content on a USB disk instead of over the WAN.
package injectcmd

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/outpost-appliance/outpost/cache/preload"
	"github.com/outpost-appliance/outpost/firmware/api"
	"github.com/outpost-appliance/outpost/firmware/cli"
	"github.com/outpost-appliance/outpost/peerdist/pccrc"
)

const usage = `usage: outpost inject (--secret TEXT | --secret-file FILE | --secret-hex HEX) [--version 2|1|1,2]
                      [--api URL] [--token TOKEN] [--json] PATH...

Computes content information for local files (a PATH that is a directory
means every file under it) with the content servers' BranchCache secret,
as the servers themselves would, and stores the content in a running
outpost: the appliance checks that the content information was made with
its [preloading] content_secret, verifies every block and stores it.
Resumable: what the appliance holds already is not sent again, so an
interrupted run is simply run again.

  --secret TEXT       the content servers' passphrase (netsh branchcache
                      set key), encoded UTF-16LE as Windows does
  --secret-file FILE  a file holding the passphrase
  --secret-hex HEX    the secret key as hex bytes
  --version V         2 (Windows 8 and later, the default), 1 (Windows 7)
                      or 1,2
  --json              one JSON line per file and version
  --api URL           the appliance's API (default ` + api.DefaultURL + `)
  --token TOKEN       bearer token (default $OUTPOST_TOKEN)

Exit status: 0 every file is held, 1 a file was refused (wrong secret,
data that does not match) or could not be read, 2 usage, 3 the API could
not be used.
`

// Result is what `inject` reports per file and version.
type Result struct {
	Path    string `json:"path"`
	Version int    `json:"version"`
	Size    uint64 `json:"size"`
	Session string `json:"session"`
	// HeldBefore are the content bytes the appliance held already;
	// SentBytes what was sent; Stored the blocks (V1) or segments (V2)
	// stored from it.
	HeldBefore uint64 `json:"held_before_bytes"`
	SentBytes  uint64 `json:"sent_bytes"`
	Stored     int    `json:"stored"`
	Complete   bool   `json:"complete"`
	Error      string `json:"error,omitempty"`
}

// chunkSize is the most one request sends: a failure loses at most that
// much, and progress is seen.
const chunkSize = 64 << 20

// Run executes `outpost inject` and returns the exit code.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fset := flag.NewFlagSet("outpost inject", flag.ContinueOnError)
	fset.SetOutput(stderr)
	fset.Usage = func() { fmt.Fprint(stderr, usage) }
	apiURL := fset.String("api", api.DefaultURL, "")
	token := fset.String("token", os.Getenv("OUTPOST_TOKEN"), "")
	var secretFlags cli.SecretFlags
	secretFlags.Register(fset)
	versionText := fset.String("version", "2", "")
	asJSON := fset.Bool("json", false, "")
	paths, err := cli.ParseFlags(fset, args)
	if err == nil && len(paths) == 1 && paths[0] == "help" {
		fmt.Fprint(stdout, usage)
		return cli.ExitOK
	}
	var secret []byte
	var versions []pccrc.Version
	if err == nil {
		secret, err = secretFlags.RequiredKey()
	}
	if err == nil {
		versions, err = parseVersions(*versionText)
	}
	if err == nil && len(paths) == 0 {
		err = cli.Usagef("expected at least one file or directory")
	}
	if err != nil {
		return cli.ExitCode(err, "outpost inject", usage, stderr)
	}
	files, err := listFiles(paths)
	if err != nil {
		return cli.ExitCode(err, "outpost inject", usage, stderr)
	}
	in := &Injector{Client: &api.Client{BaseURL: *apiURL, Token: *token}, Secret: secret}
	if !*asJSON {
		in.Progress = stdout
	}
	failed := 0
	for _, f := range files {
		for _, v := range versions {
			res, err := in.File(ctx, f, v)
			if err != nil {
				var apiErr *api.APIError
				if ctx.Err() != nil || (errors.As(err, &apiErr) && (apiErr.Code == 401 || apiErr.Code == 429 || apiErr.Code >= 500)) || isUnreachable(err) {
					return cli.ExitCode(fmt.Errorf("%s: %w", f, err), "outpost inject", usage, stderr)
				}
				failed++
				res.Error = err.Error()
				fmt.Fprintf(stderr, "outpost inject: FAILED: %s (V%d): %v\n", f, v, err)
			}
			if *asJSON {
				json.NewEncoder(stdout).Encode(res)
			}
		}
	}
	if failed > 0 {
		fmt.Fprintf(stderr, "outpost inject: %d of %d failed\n", failed, len(files)*len(versions))
		return cli.ExitFailed
	}
	return cli.ExitOK
}

func isUnreachable(err error) bool { return strings.Contains(err.Error(), "is outpost running?") }

func parseVersions(text string) ([]pccrc.Version, error) {
	var out []pccrc.Version
	var ints []int
	for _, f := range strings.Split(text, ",") {
		v, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			return nil, cli.Usagef("--version %q: expected 2, 1 or 1,2", text)
		}
		ints = append(ints, v)
		out = append(out, pccrc.Version(v))
	}
	if err := preload.CheckVersions(ints); err != nil {
		return nil, cli.Usagef("--version: %v", err)
	}
	return out, nil
}

// listFiles expands directories into the regular files under them.
func listFiles(paths []string) ([]string, error) {
	var files []string
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if !fi.IsDir() {
			files = append(files, p)
			continue
		}
		err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.Type().IsRegular() {
				files = append(files, path)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return files, nil
}

// Injector sends files to an appliance.
type Injector struct {
	Client *api.Client
	Secret []byte
	// Progress, if set, gets a line per file.
	Progress io.Writer
}

// File hashes path as content information of version v and sends what
// the appliance lacks of it. A session the appliance forgot (it
// restarted) is begun again.
func (in *Injector) File(ctx context.Context, path string, v pccrc.Version) (Result, error) {
	res := Result{Path: path, Version: int(v)}
	f, err := os.Open(path)
	if err != nil {
		return res, err
	}
	defer f.Close()
	var ci *pccrc.Info
	if v == pccrc.V1 {
		ci, err = pccrc.GenerateV1(ctx, f, pccrc.SHA256, in.Secret)
	} else {
		ci, err = pccrc.GenerateV2(ctx, f, in.Secret)
	}
	if err != nil {
		return res, fmt.Errorf("hashing: %w", err)
	}
	raw, err := ci.MarshalBinary()
	if err != nil {
		return res, err
	}
	_, size := ci.Range()
	res.Size = size
	for attempt := 0; ; attempt++ {
		err := in.send(ctx, f, ci, raw, &res)
		var apiErr *api.APIError
		if errors.As(err, &apiErr) && apiErr.Code == 404 && attempt < 3 {
			continue // the session was forgotten: begin again
		}
		return res, err
	}
}

func (in *Injector) send(ctx context.Context, f *os.File, ci *pccrc.Info, raw []byte, res *Result) error {
	plan, err := in.Client.InjectBegin(ctx, filepath.Base(res.Path), raw)
	if err != nil {
		return err
	}
	res.Session = plan.Session
	if res.SentBytes == 0 {
		res.HeldBefore = res.Size - plan.MissingBytes
	}
	if in.Progress != nil {
		fmt.Fprintf(in.Progress, "%s (V%d): %s, %s held already, sending %s\n", res.Path, res.Version,
			api.FormatBytes(res.Size), api.FormatBytes(res.Size-plan.MissingBytes), api.FormatBytes(plan.MissingBytes))
	}
	res.Complete = plan.Complete
	for _, r := range plan.Missing {
		for _, c := range chunks(ci, r, chunkSize) {
			out, err := in.Client.InjectPut(ctx, plan.Session, c.Start, io.NewSectionReader(f, int64(c.Start), int64(c.End-c.Start)), int64(c.End-c.Start))
			if err != nil {
				return err
			}
			res.SentBytes += c.End - c.Start
			res.Stored += out.Stored
			res.Complete = out.Complete
		}
	}
	if !res.Complete {
		return fmt.Errorf("the appliance does not hold all of it after the upload (%d blocks missing); run again", plan.Blocks-plan.BlocksHeld-res.Stored)
	}
	if in.Progress != nil {
		fmt.Fprintf(in.Progress, "%s (V%d): held, %d %s stored, verified\n", res.Path, res.Version, res.Stored, unitName(ci))
	}
	return nil
}

func unitName(ci *pccrc.Info) string {
	if ci.Version == pccrc.V2 {
		return "segments"
	}
	return "blocks"
}

// chunks cuts a missing range into pieces of about max bytes that start
// and end on unit boundaries (V1 blocks, V2 segments), so that each piece
// holds only whole units.
func chunks(ci *pccrc.Info, r preload.Range, maxBytes uint64) []preload.Range {
	var out []preload.Range
	start := r.Start
	for _, s := range ci.Segments {
		segEnd := s.Offset + uint64(s.Size)
		if segEnd <= start || s.Offset >= r.End {
			continue
		}
		// Boundaries inside the segment: V1 blocks, or its end.
		step := uint64(s.Size)
		if ci.Version == pccrc.V1 {
			step = pccrc.BlockSize
		}
		for b := s.Offset + step; ; b += step {
			b = min(b, segEnd)
			if b > start && b-start >= maxBytes && b <= r.End {
				out = append(out, preload.Range{Start: start, End: b})
				start = b
			}
			if b >= segEnd || b >= r.End {
				break
			}
		}
	}
	if start < r.End {
		out = append(out, preload.Range{Start: start, End: r.End})
	}
	return out
}
