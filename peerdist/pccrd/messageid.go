package pccrd

import (
	"crypto/rand"
	"fmt"
)

// NewMessageID returns a fresh "urn:uuid:" message ID (a random version 4
// UUID). Every message needs its own (docs/protocols.md §5.4); receivers
// use it to drop repeats of a multicast probe.
func NewMessageID() string {
	var u [16]byte
	_, _ = rand.Read(u[:]) // never fails (crypto/rand crashes the program instead)
	u[6] = u[6]&0x0F | 0x40
	u[8] = u[8]&0x3F | 0x80
	return fmt.Sprintf("urn:uuid:%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}
