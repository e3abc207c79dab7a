// Command outpost is the Outpost appliance program: the branch-office
// BranchCache hosted cache and subnet leader, and the operator's tools.
// One binary serves every role through subcommands.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/outpost-appliance/outpost/firmware/cicmd"
	"github.com/outpost-appliance/outpost/firmware/getcmd"
	"github.com/outpost-appliance/outpost/firmware/injectcmd"
	"github.com/outpost-appliance/outpost/firmware/offercmd"
	"github.com/outpost-appliance/outpost/firmware/origincmd"
	"github.com/outpost-appliance/outpost/firmware/pid1"
	"github.com/outpost-appliance/outpost/firmware/preloadcmd"
	"github.com/outpost-appliance/outpost/firmware/probecmd"
)

const usage = `usage: outpost <command> [arguments]

Commands:
  run      run the appliance's services as a daemon on this host
  status   print the live state of a running outpost (from its API)
  segments list the segments a running outpost holds, or purge one
  events   print the event log of a running outpost
  config   check a configuration file, or print the commented default one
  ci       content information tools: hash a file, show or verify a .ci file
  get      fetch content from a peer or hosted cache and verify every block
  offer    offer a file to a hosted cache as a Windows client would
  probe    multicast discovery probes for a .ci file's segments and print who answers
  origin   serve a directory over HTTP as a BranchCache content server (like IIS)
  preload  ask a running outpost to pre-stage a URL from a BranchCache server now
  inject   hash local files with the content servers' secret and store them in a running outpost
  version  print the version

As the image's /init (PID 1), outpost boots the appliance instead.

Run 'outpost <command> help' for a command's arguments.
`

func main() {
	if pid1.IsInit() {
		pid1.Main(version()) // never returns
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "run":
		return runDaemon(ctx, args[1:], stderr)
	case "status":
		return runStatus(ctx, args[1:], stdout, stderr)
	case "segments":
		return runSegments(ctx, args[1:], stdout, stderr)
	case "events":
		return runEvents(ctx, args[1:], stdout, stderr)
	case "config":
		return runConfig(args[1:], stdout, stderr)
	case "ci":
		return cicmd.Run(ctx, args[1:], stdout, stderr)
	case "get":
		return getcmd.Run(ctx, args[1:], stdout, stderr)
	case "offer":
		return offercmd.Run(ctx, args[1:], stdout, stderr)
	case "probe":
		return probecmd.Run(ctx, args[1:], stdout, stderr)
	case "origin":
		return origincmd.Run(ctx, args[1:], stdout, stderr)
	case "preload":
		return preloadcmd.Run(ctx, args[1:], stdout, stderr)
	case "inject":
		return injectcmd.Run(ctx, args[1:], stdout, stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, "outpost", version())
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "outpost: unknown command %q\n\n%s", args[0], usage)
	return 2
}

// buildVersion is set by the Makefile (-ldflags -X) to `git describe`.
var buildVersion string

// version reports the version stamped by the Makefile, else what the Go
// build recorded.
func version() string {
	if buildVersion != "" {
		return buildVersion
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := info.Main.Version
	for _, s := range info.Settings {
		if s.Key == "vcs.revision" {
			v += " " + s.Value
		}
	}
	return v
}
