// Package origincmd implements `outpost origin`: serve a directory over
// HTTP as a BranchCache-enabled content server (IIS with BranchCache, MS-PCCRTP),
// so Linux web, PXE and OS-deployment servers hand Windows and iPXE
// clients content information and let peers and hosted caches carry the
// bytes. The server itself is firmware/origin.
package origincmd

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/outpost-appliance/outpost/firmware/cli"
	"github.com/outpost-appliance/outpost/firmware/config"
	"github.com/outpost-appliance/outpost/firmware/origin"
	"github.com/outpost-appliance/outpost/peerdist/pccrc"
)

const usage = `usage: outpost origin --dir DIR (--secret TEXT | --secret-file FILE | --secret-hex HEX)
                      [--listen ADDR] [--cache-dir DIR] [--versions 1,2]
                      [--inline-hash-limit SIZE] [--hash-workers N] [--prehash]
                      [--log-level debug|info|warn|error]

Serves the files under DIR over HTTP like IIS with BranchCache enabled: a
GET that asks for the peerdist encoding (Accept-Encoding: peerdist and
X-P2P-PeerDist) gets Content Information V1 or V2 instead of the content;
everything else, and MissingDataRequest=true, gets the content (Range,
ETag, Last-Modified and conditional requests honoured). Content
information is computed once per file version and kept in --cache-dir;
until it is ready the content is sent as usual (see docs/origin.md).

  --dir DIR                 the directory to serve (dotfiles are never served;
                            a directory gives its index.html, else 403)
  --secret TEXT             server secret passphrase, as set on Windows with
                            'netsh branchcache set key "TEXT"' (encoded UTF-16LE)
  --secret-file FILE        the passphrase from a file (first line)
  --secret-hex HEX          the server secret key as hex bytes
  --listen ADDR             where to listen (default :8080)
  --cache-dir DIR           where content information is kept (default
                            $XDG_CACHE_HOME/outpost-origin, /var/cache/outpost-origin
                            for root); never inside --dir
  --versions 1,2            content information versions offered (default 1,2)
  --inline-hash-limit SIZE  hash files up to SIZE (e.g. 8MiB) before answering, so
                            the first request already gets content information
                            (default 0: all in the background, as IIS does)
  --hash-workers N          files hashed at once in the background (default 2)
  --prehash                 hash every file at start, in the background
  --log-level LEVEL         debug, info (one line per request), warn or error
`

// shutdownTimeout bounds the wait for requests in flight after a signal.
const shutdownTimeout = 10 * time.Second

// Run executes `outpost origin` with args until ctx is done and returns
// the exit code.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 1 && args[0] == "help" {
		fmt.Fprint(stdout, usage)
		return cli.ExitOK
	}
	return run(ctx, args, stderr, nil)
}

// run is Run with a hook called with the listening address once the
// server accepts connections (for tests).
func run(ctx context.Context, args []string, stderr io.Writer, ready func(net.Addr)) int {
	cfg, err := parseArgs(args, stderr)
	if err == nil {
		err = serve(ctx, cfg, stderr, ready)
	}
	return cli.ExitCode(err, "outpost origin", usage, stderr)
}

type settings struct {
	listen   string
	logLevel slog.Level
	opts     origin.Options
}

func parseArgs(args []string, stderr io.Writer) (settings, error) {
	fs := flag.NewFlagSet("outpost origin", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage) }
	dir := fs.String("dir", "", "")
	listen := fs.String("listen", ":8080", "")
	var secretFlags cli.SecretFlags
	secretFlags.Register(fs)
	cacheDir := fs.String("cache-dir", "", "")
	versions := fs.String("versions", "1,2", "")
	inlineLimit := fs.String("inline-hash-limit", "0", "")
	workers := fs.Int("hash-workers", origin.DefaultHashWorkers, "")
	prehash := fs.Bool("prehash", false, "")
	level := fs.String("log-level", "info", "")
	positional, err := cli.ParseFlags(fs, args)
	if err != nil {
		return settings{}, err
	}
	if len(positional) != 0 {
		return settings{}, cli.Usagef("unexpected arguments %q", positional)
	}
	if *dir == "" {
		return settings{}, cli.Usagef("--dir is required")
	}
	if *workers < 1 {
		return settings{}, cli.Usagef("--hash-workers must be at least 1")
	}
	s := settings{listen: *listen, opts: origin.Options{
		Dir: *dir, CacheDir: *cacheDir, HashWorkers: *workers, Prehash: *prehash,
	}}
	if s.opts.Secret, err = secretFlags.RequiredKey(); err != nil {
		return settings{}, err
	}
	if s.opts.Versions, err = parseVersions(*versions); err != nil {
		return settings{}, err
	}
	limit, err := config.ParseSize(*inlineLimit)
	if err != nil {
		return settings{}, cli.Usagef("--inline-hash-limit: %v", err)
	}
	s.opts.InlineHashLimit = int64(limit)
	if err := s.logLevel.UnmarshalText([]byte(*level)); err != nil {
		return settings{}, cli.Usagef("--log-level %q: want debug, info, warn or error", *level)
	}
	return s, nil
}

func parseVersions(s string) ([]pccrc.Version, error) {
	var out []pccrc.Version
	seen := map[pccrc.Version]bool{}
	for part := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(part))
		v := pccrc.Version(n)
		if err != nil || (v != pccrc.V1 && v != pccrc.V2) {
			return nil, cli.Usagef("--versions %q: want 1, 2 or 1,2", s)
		}
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out, nil
}

func serve(ctx context.Context, s settings, stderr io.Writer, ready func(net.Addr)) error {
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: s.logLevel}))
	s.opts.Logger = log
	srv, err := origin.New(s.opts)
	if err != nil {
		return err
	}
	defer srv.Close()
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.listen)
	if err != nil {
		return err
	}
	hs := &http.Server{
		Handler:           srv,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	log.Info("origin: listening", "addr", ln.Addr().String())
	if ready != nil {
		ready(ln.Addr())
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	if err := hs.Shutdown(shutdownCtx); err != nil {
		hs.Close()
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	log.Info("origin: stopped")
	return nil
}
