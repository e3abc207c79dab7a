package cli

import (
	"encoding/hex"
	"flag"
	"os"
	"strings"

	"github.com/outpost-appliance/outpost/peerdist/pccrc"
)

// SecretFlags are --secret, --secret-file and --secret-hex: the content
// servers' BranchCache secret, as the passphrase given to `netsh
// branchcache set key` (encoded as Windows does), a file holding that
// passphrase, or the key's bytes.
type SecretFlags struct{ text, file, hexText string }

// Register adds the three flags to fs.
func (s *SecretFlags) Register(fs *flag.FlagSet) {
	fs.StringVar(&s.text, "secret", "", "the content servers' passphrase (netsh branchcache set key), encoded UTF-16LE as Windows does")
	fs.StringVar(&s.file, "secret-file", "", "a file holding the passphrase (its first line)")
	fs.StringVar(&s.hexText, "secret-hex", "", "the secret key as hex bytes")
}

// Key returns the secret key from the one flag given; none given is nil
// without an error, more than one is a usage error.
func (s *SecretFlags) Key() ([]byte, error) {
	given := 0
	for _, v := range []string{s.text, s.file, s.hexText} {
		if v != "" {
			given++
		}
	}
	switch {
	case given > 1:
		return nil, Usagef("give one of --secret, --secret-file or --secret-hex, not several")
	case s.text != "":
		return pccrc.PassphraseSecret(s.text), nil
	case s.file != "":
		b, err := os.ReadFile(s.file)
		if err != nil {
			return nil, Usagef("--secret-file: %v", err)
		}
		first, _, _ := strings.Cut(string(b), "\n")
		pass := strings.TrimRight(first, "\r")
		if pass == "" {
			return nil, Usagef("--secret-file %s is empty", s.file)
		}
		return pccrc.PassphraseSecret(pass), nil
	case s.hexText != "":
		key, err := hex.DecodeString(strings.TrimSpace(s.hexText))
		if err != nil || len(key) == 0 {
			return nil, Usagef("--secret-hex: expected hex bytes")
		}
		return key, nil
	}
	return nil, nil
}

// RequiredKey is Key for commands that cannot work without the secret.
func (s *SecretFlags) RequiredKey() ([]byte, error) {
	key, err := s.Key()
	if err == nil && key == nil {
		err = Usagef("give the content servers' secret with one of --secret, --secret-file or --secret-hex")
	}
	return key, err
}
