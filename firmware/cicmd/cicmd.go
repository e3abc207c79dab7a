// Package cicmd implements `outpost ci`: the operator's tool for BranchCache
// content information. It hashes a file as a BranchCache content server
// would (IIS, a BITS server, `outpost origin`), shows a .ci file as JSON and
// verifies a file against one, so an admin can check what a server sends
// and what a cache should hold.
package cicmd

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/outpost-appliance/outpost/firmware/cli"
	"github.com/outpost-appliance/outpost/peerdist/pccrc"
)

const usage = `usage: outpost ci <command> [arguments]

Commands:
  hash    produce content information for a file, as a BranchCache content server would
          outpost ci hash --version 1|2 (--secret TEXT | --secret-file F | --secret-hex HEX) [--hash sha256|sha384|sha512]
                          [--range START:LEN] FILE -o FILE.ci
  show    print content information as JSON
          outpost ci show FILE.ci
  verify  check a file against content information; exits 1 naming the first bad segment/block
          outpost ci verify [--secret TEXT | --secret-file F | --secret-hex HEX] FILE.ci FILE
`

// Run executes `outpost ci` with args (the words after "ci") and returns
// the process exit code.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return cli.ExitUsage
	}
	var err error
	switch args[0] {
	case "hash":
		err = runHash(ctx, args[1:], stderr)
	case "show":
		err = runShow(args[1:], stdout, stderr)
	case "verify":
		err = runVerify(ctx, args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return cli.ExitOK
	default:
		err = cli.Usagef("unknown command %q", args[0])
	}
	// A verification failure is the data's fault, not the tool's.
	var ve *pccrc.VerifyError
	if errors.As(err, &ve) {
		err = cli.FailedError{Err: err}
	}
	return cli.ExitCode(err, "outpost ci", usage, stderr)
}

func runHash(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("outpost ci hash", flag.ContinueOnError)
	fs.SetOutput(stderr)
	version := fs.Int("version", 1, "content information version: 1 (Windows 7+) or 2 (Windows 8+)")
	hashName := fs.String("hash", "sha256", "V1 hash algorithm: sha256, sha384 or sha512")
	rangeText := fs.String("range", "", "describe only START:LEN bytes of the file, as for an HTTP Range request")
	output := fs.String("o", "", "output file (- for standard output)")
	var secret cli.SecretFlags
	secret.Register(fs)
	files, err := cli.ParseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(files) != 1 {
		return cli.Usagef("hash takes exactly one FILE")
	}
	if *output == "" {
		return cli.Usagef("hash needs -o FILE.ci (or -o - for standard output)")
	}
	key, err := secret.Key()
	if err != nil {
		return err
	}
	if key == nil {
		return cli.Usagef("hash needs the server secret: --secret TEXT, --secret-file FILE or --secret-hex HEX")
	}
	var algo pccrc.HashAlgo
	switch strings.ToLower(*hashName) {
	case "sha256", "sha-256":
		algo = pccrc.SHA256
	case "sha384", "sha-384":
		algo = pccrc.SHA384
	case "sha512", "sha-512":
		algo = pccrc.SHA512
	default:
		return cli.Usagef("--hash %q: want sha256, sha384 or sha512", *hashName)
	}
	if *version == 2 && algo != pccrc.SHA256 {
		return cli.Usagef("--hash applies to version 1 only (version 2 always uses truncated SHA-512)")
	}

	f, err := os.Open(files[0])
	if err != nil {
		return err
	}
	defer f.Close()
	var ci *pccrc.Info
	switch *version {
	case 1:
		ci, err = pccrc.GenerateV1(ctx, f, algo, key)
	case 2:
		ci, err = pccrc.GenerateV2(ctx, f, key)
	default:
		return cli.Usagef("--version %d: want 1 or 2", *version)
	}
	if err != nil {
		return fmt.Errorf("hash %s: %w", files[0], err)
	}
	if *rangeText != "" {
		start, length, err := parseRange(*rangeText)
		if err != nil {
			return err
		}
		if ci, err = ci.Restrict(start, length); err != nil {
			return err
		}
	}
	raw, err := ci.MarshalBinary()
	if err != nil {
		return err
	}
	if err := cli.WriteFileAtomic(*output, raw); err != nil {
		return err
	}
	start, end := ci.Range()
	fmt.Fprintf(stderr, "%s: content information V%d (%s), %d segment(s), range [%d, %d), %d bytes\n",
		*output, ci.Version, ci.Algo, len(ci.Segments), start, end, len(raw))
	return nil
}

func parseRange(s string) (start, length uint64, err error) {
	a, b, ok := strings.Cut(s, ":")
	if ok {
		start, err = strconv.ParseUint(a, 10, 64)
		if err == nil {
			length, err = strconv.ParseUint(b, 10, 64)
		}
	}
	if !ok || err != nil || length == 0 {
		return 0, 0, cli.Usagef("--range %q: want START:LEN in bytes, LEN > 0", s)
	}
	return start, length, nil
}

func readInfo(path string) (*pccrc.Info, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	ci, err := pccrc.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return ci, nil
}

func runVerify(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("outpost ci verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var secret cli.SecretFlags
	secret.Register(fs)
	files, err := cli.ParseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(files) != 2 {
		return cli.Usagef("verify takes FILE.ci and FILE")
	}
	key, err := secret.Key()
	if err != nil {
		return err
	}
	ci, err := readInfo(files[0])
	if err != nil {
		return err
	}
	f, err := os.Open(files[1])
	if err != nil {
		return err
	}
	defer f.Close()
	if err := ci.Verify(ctx, f); err != nil {
		return err
	}
	if size, known := ci.ContentSize(); known {
		st, err := f.Stat()
		if err != nil {
			return err
		}
		if uint64(st.Size()) != size {
			last := len(ci.Segments) - 1
			return &pccrc.VerifyError{Segment: last, Block: -1, Offset: ci.Segments[last].Offset,
				Reason: fmt.Sprintf("the content information describes %d bytes of content, the file has %d", size, st.Size())}
		}
	}
	checked := "hashes"
	if key != nil {
		if err := ci.CheckSecrets(key); err != nil {
			return err
		}
		checked = "hashes and segment secrets"
	}
	start, end := ci.Range()
	fmt.Fprintf(stdout, "OK: %s matches %s (%s of %d segment(s), range [%d, %d))\n", files[1], files[0], checked, len(ci.Segments), start, end)
	return nil
}
