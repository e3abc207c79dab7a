package cli

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/outpost-appliance/outpost/peerdist/pccrc"
)

func TestSecretFlags(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(content), 0o600)
		return p
	}
	crlf, two, empty := write("crlf", "branch office\r\n"), write("two", "first\nsecond\n"), write("empty", "\n")
	for _, tt := range []struct {
		args  []string
		want  []byte
		usage bool
	}{
		{[]string{"--secret", "branch office"}, pccrc.PassphraseSecret("branch office"), false},
		{[]string{"--secret-file", crlf}, pccrc.PassphraseSecret("branch office"), false},
		{[]string{"--secret-file", two}, pccrc.PassphraseSecret("first"), false},
		{[]string{"--secret-hex", " 00ff "}, []byte{0, 0xff}, false},
		{nil, nil, false},
		{[]string{"--secret", "a", "--secret-hex", "00"}, nil, true},
		{[]string{"--secret-file", empty}, nil, true},
		{[]string{"--secret-file", filepath.Join(dir, "absent")}, nil, true},
		{[]string{"--secret-hex", "zz"}, nil, true},
	} {
		var s SecretFlags
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		s.Register(fs)
		if err := fs.Parse(tt.args); err != nil {
			t.Fatal(err)
		}
		got, err := s.Key()
		var ue UsageError
		if tt.usage != errors.As(err, &ue) || !bytes.Equal(got, tt.want) {
			t.Errorf("%v: %x, %v", tt.args, got, err)
		}
		if tt.args == nil {
			if _, err := s.RequiredKey(); !errors.As(err, &ue) {
				t.Errorf("no secret given: RequiredKey says %v", err)
			}
		}
	}
}
