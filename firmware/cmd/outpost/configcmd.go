package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/outpost-appliance/outpost/firmware/config"
)

const configUsage = `usage: outpost config <command>

Commands:
  check FILE [--set KEY=VALUE]...   validate FILE and print the effective configuration
                                    (secrets redacted); exit 1 listing every problem
  default                           print the fully commented default outpost.toml
`

// runConfig is `outpost config`.
func runConfig(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, configUsage)
		return 2
	}
	switch args[0] {
	case "default":
		fmt.Fprint(stdout, config.DefaultFile())
		return 0
	case "check":
		return configCheck(args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, configUsage)
		return 0
	}
	fmt.Fprintf(stderr, "outpost config: unknown command %q\n\n%s", args[0], configUsage)
	return 2
}

func configCheck(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("config check", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var overrides overrideFlags
	fs.Var(&overrides, "set", "")
	// The file may come before or after the flags.
	var files []string
	for {
		if err := fs.Parse(args); err != nil {
			fmt.Fprintf(stderr, "outpost config check: %v\n\n%s", err, configUsage)
			return 2
		}
		if fs.NArg() == 0 {
			break
		}
		files = append(files, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(files) != 1 {
		fmt.Fprint(stderr, configUsage)
		return 2
	}
	cfg, err := config.Load(files[0], overrides...)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	text, err := cfg.Effective()
	if err != nil {
		fmt.Fprintf(stderr, "outpost config check: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "# %s: OK. Effective configuration (secrets redacted):\n", files[0])
	stdout.Write(text)
	return 0
}
