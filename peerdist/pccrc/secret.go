package pccrc

import "unicode/utf16"

// PassphraseSecret is the server secret key Windows derives from a
// passphrase given to `netsh branchcache set key "<passphrase>"`: the
// passphrase in UTF-16LE, without a terminating NUL (protocols.md §2.2).
// Content information made with it matches a Windows content server's.
func PassphraseSecret(passphrase string) []byte {
	units := utf16.Encode([]rune(passphrase))
	out := make([]byte, 0, 2*len(units))
	for _, u := range units {
		out = append(out, byte(u), byte(u>>8))
	}
	return out
}
