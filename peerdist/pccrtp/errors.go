package pccrtp

import (
	"errors"
	"fmt"
)

// ErrMalformed is wrapped by every parsing error: a header value that does
// not follow MS-PCCRTP. A server treats such a request as one that did not
// ask for peerdist.
var ErrMalformed = errors.New("malformed PeerDist header")

func malformed(format string, args ...any) error {
	return fmt.Errorf(format+": %w", append(args, ErrMalformed)...)
}
