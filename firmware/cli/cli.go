// Package cli holds what every `outpost` subcommand shares: exit codes,
// usage errors, and flag parsing that lets flags follow positional
// arguments (`outpost ci hash FILE -o OUT`), which package flag alone does
// not allow.
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Exit codes: failures of the thing checked (bad data, a peer that does not
// have the content) are told apart from usage and I/O errors, so scripts can
// act on them.
const (
	ExitOK       = 0
	ExitFailed   = 1
	ExitUsage    = 2
	ExitInternal = 3
)

// UsageError is a mistake in the command line.
type UsageError struct{ Msg string }

func (e UsageError) Error() string { return e.Msg }

// Usagef returns a UsageError with a formatted message.
func Usagef(format string, args ...any) error { return UsageError{fmt.Sprintf(format, args...)} }

// FailedError marks an error as a failure of what was checked or fetched
// (exit code 1) rather than of the tool.
type FailedError struct{ Err error }

func (e FailedError) Error() string { return e.Err.Error() }
func (e FailedError) Unwrap() error { return e.Err }

// ParseFlags parses flags that may come before, between or after
// positional arguments and returns the positional ones.
func ParseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, UsageError{err.Error()}
		}
		if fs.NArg() == 0 {
			return positional, nil
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// ExitCode reports err on stderr (prefixed by the command's name, with the
// usage text for usage errors) and returns the exit code for it.
func ExitCode(err error, name, usage string, stderr io.Writer) int {
	var ue UsageError
	var fe FailedError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return ExitOK
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "%s: %v\n\n%s", name, err, usage)
		return ExitUsage
	case errors.As(err, &fe):
		fmt.Fprintf(stderr, "%s: FAILED: %v\n", name, err)
		return ExitFailed
	}
	fmt.Fprintf(stderr, "%s: %v\n", name, err)
	return ExitInternal
}

// WriteFileAtomic writes data to path through a temporary file and a
// rename, so an interrupted run never leaves a truncated file behind; "-"
// means standard output.
func WriteFileAtomic(path string, data []byte) error {
	if path == "-" {
		_, err := os.Stdout.Write(data)
		return err
	}
	f, err := CreateAtomic(path)
	if err != nil {
		return err
	}
	defer f.Abort()
	if _, err := f.Write(data); err != nil {
		return err
	}
	return f.Commit()
}

// AtomicFile is a file that appears at its path only when committed.
type AtomicFile struct {
	*os.File
	path      string
	committed bool
}

// CreateAtomic starts writing a file that replaces path on Commit.
func CreateAtomic(path string) (*AtomicFile, error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return nil, err
	}
	return &AtomicFile{File: tmp, path: path}, nil
}

// Commit syncs, closes and renames the file into place.
func (f *AtomicFile) Commit() error {
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Chmod(f.Name(), 0o644); err != nil {
		return err
	}
	if err := os.Rename(f.Name(), f.path); err != nil {
		return err
	}
	f.committed = true
	return nil
}

// Abort removes the temporary file unless it was committed; safe to defer.
func (f *AtomicFile) Abort() {
	if !f.committed {
		f.Close()
		os.Remove(f.Name())
	}
}
