package pccrc

import (
	"encoding/hex"
	"testing"
)

func TestPassphraseSecret(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"server secret", "7300650072007600650072002000730065006300720065007400"},
		{"é😀", "e9003dd800de"}, // a surrogate pair for what is past the BMP
		{"", ""},
	} {
		if got := hex.EncodeToString(PassphraseSecret(tt.in)); got != tt.want {
			t.Errorf("PassphraseSecret(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}
