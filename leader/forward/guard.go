package forward

import (
	"time"

	"github.com/outpost-appliance/outpost/leader/internal/seen"
)

// DefaultSkew is how far a message's timestamp may be from our clock.
// Leaders run NTP; half a minute absorbs a slow sync without keeping
// nonces for long.
const DefaultSkew = 30 * time.Second

// Guard rejects replays: a message must be stamped within Skew of now
// and carry a nonce not seen in that time. Nonces are kept for twice the
// skew, which covers every timestamp the window still accepts.
type Guard struct {
	skew   time.Duration
	nonces *seen.Set[[16]byte]
}

// NewGuard returns a guard with the given skew (DefaultSkew if 0).
func NewGuard(skew time.Duration) *Guard {
	if skew <= 0 {
		skew = DefaultSkew
	}
	return &Guard{skew: skew, nonces: seen.New[[16]byte](2*skew, 1<<16)}
}

// Check accepts an authenticated envelope once.
func (g *Guard) Check(e *Envelope, now time.Time) error {
	if d := now.Sub(e.Time); d > g.skew || d < -g.skew {
		return ErrStale
	}
	if !g.nonces.Add(e.Nonce, now) {
		return ErrReplayed
	}
	return nil
}
