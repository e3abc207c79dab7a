package cli

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestParseFlagsInterspersed(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	out := fs.String("o", "", "")
	verbose := fs.Bool("v", false, "")
	args, err := ParseFlags(fs, []string{"a", "-o", "x", "b", "-v", "c"})
	if err != nil || !slices.Equal(args, []string{"a", "b", "c"}) || *out != "x" || !*verbose {
		t.Errorf("args %v o %q v %v err %v", args, *out, *verbose, err)
	}
	fs = flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(&bytes.Buffer{})
	if _, err := ParseFlags(fs, []string{"-nope"}); !errors.As(err, new(UsageError)) {
		t.Errorf("unknown flag: %v", err)
	}
}

func TestExitCode(t *testing.T) {
	for _, tc := range []struct {
		err  error
		code int
		text string
	}{
		{nil, ExitOK, ""},
		{flag.ErrHelp, ExitOK, ""},
		{Usagef("bad %s", "thing"), ExitUsage, "x: bad thing\n\nUSAGE"},
		{FailedError{errors.New("block 3")}, ExitFailed, "x: FAILED: block 3\n"},
		{errors.New("disk"), ExitInternal, "x: disk\n"},
	} {
		var stderr bytes.Buffer
		if code := ExitCode(tc.err, "x", "USAGE", &stderr); code != tc.code || stderr.String() != tc.text {
			t.Errorf("%v: code %d, %q", tc.err, code, stderr.String())
		}
	}
}

func TestAtomicFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out")
	f, err := CreateAtomic(path)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("partial")
	f.Abort()
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("aborted file left %v", entries)
	}
	if err := WriteFileAtomic(path, []byte("whole")); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(path); string(data) != "whole" {
		t.Errorf("content %q", data)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 || strings.HasPrefix(entries[0].Name(), ".") {
		t.Errorf("directory holds %v", entries)
	}
}
