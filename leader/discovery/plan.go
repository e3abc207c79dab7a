package discovery

import (
	"encoding/hex"
	"strings"
	"time"

	"github.com/outpost-appliance/outpost/peerdist/pccrd"
	"github.com/outpost-appliance/outpost/peerdist/pccrr"
)

// Where says who holds a segment.
type Where uint8

// Where values.
const (
	Nowhere Where = iota
	// Local: the store holds blocks of it; clients fetch from the peer
	// port.
	Local
	// Relayed: a peer in another subnet holds it; clients fetch through
	// the relay.
	Relayed
)

// Holding is what the leader knows of one probed segment.
type Holding struct {
	Where Where
	// Blocks held (V1 BlockCount). A relayed segment whose count is
	// unknown is answered as 1: iPXE ignores a count of 0.
	Blocks   int
	Complete bool
	// Since is when the segment entered the cache (V2 SegmentAges).
	Since time.Time
}

// Plan is the decision about one probe.
type Plan struct {
	// Match is the reply without its addressing (MessageID, AppSequence,
	// endpoint, XAddrs), or nil: nothing probed is held.
	Match *pccrd.ProbeMatch
	// Relayed: some answered segment is held only remotely, so XAddrs
	// must name the relay, which also serves what is held locally.
	Relayed bool
	// Missing are the probed segments held nowhere known: what a
	// forwarder would ask other leaders about.
	Missing [][]byte
}

// MakePlan decides the answer to p given, per probed segment in probe
// order, what is known of it.
func MakePlan(p *pccrd.Probe, held []Holding, now time.Time) Plan {
	var plan Plan
	m := &pccrd.ProbeMatch{RelatesTo: p.MessageID, Version: p.Version, MetadataVersion: 2}
	any := false
	ages := pccrr.SegmentAges{Units: pccrr.AgeCentiseconds}
	for i, id := range p.SegmentIDs {
		h := held[i]
		if h.Where == Nowhere {
			plan.Missing = append(plan.Missing, id)
			if p.Version == pccrd.V2 {
				m.Availability = append(m.Availability, pccrd.NotAvailable)
			}
			continue
		}
		any = true
		plan.Relayed = plan.Relayed || h.Where == Relayed
		if p.Version == pccrd.V1 {
			token := strings.ToUpper(hex.EncodeToString(id))
			if i < len(p.Tokens) {
				token = p.Tokens[i] // echo the client's spelling (protocols.md §5.2)
			}
			m.Tokens = append(m.Tokens, token)
			m.BlockCounts = append(m.BlockCounts, uint32(max(h.Blocks, 1)))
			continue
		}
		a := pccrd.PartiallyAvailable
		if h.Complete {
			a = pccrd.FullyAvailable
		}
		m.Availability = append(m.Availability, a)
		// An age's index is one byte: entries past the 256th go without.
		if i <= 255 && !h.Since.IsZero() {
			ages.Ages = append(ages.Ages, pccrr.SegmentAge{Index: uint8(i), Age: ages.Units.Age(now.Sub(h.Since))})
		}
	}
	if !any {
		return plan
	}
	if len(ages.Ages) > 0 && len(ages.Ages) <= 255 {
		if blob, err := ages.Marshal(); err == nil {
			m.SegmentAges = blob
		}
	}
	plan.Match = m
	return plan
}
