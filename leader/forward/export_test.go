package forward

import (
	"crypto/hmac"
	"crypto/sha256"
)

// sealTail appends the MAC to a hand-made datagram.
func sealTail(key Key, b []byte) []byte {
	m := hmac.New(sha256.New, key[:])
	m.Write(b)
	return m.Sum(b)
}
