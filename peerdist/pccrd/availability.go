package pccrd

import "fmt"

// Availability is one 2-bit entry of a V2 ProbeMatch's Scopes bit array,
// which answers a V2 probe entry by entry in probe order: the high bit says
// the responder holds some of the segment, the low bit that it holds all of
// it (MS-PCCRD §2.2.3.3, docs/protocols.md §5.3).
type Availability uint8

// The meaningful entry values. 0b01 (all but not some) has no meaning; it
// is decoded as received.
const (
	NotAvailable       Availability = 0b00
	PartiallyAvailable Availability = 0b10
	FullyAvailable     Availability = 0b11
)

// HasSome reports the high bit: some blocks of the segment are held.
func (a Availability) HasSome() bool { return a&0b10 != 0 }

// HasAll reports the low bit: the whole segment is held.
func (a Availability) HasAll() bool { return a&0b01 != 0 }

// PackAvailability builds the bit array, four entries per byte. The spec
// does not say which end of a byte holds the first entry (docs/protocols.md
// §8 item 4); like the shared vectors we assume the first entry sits in the
// two most significant bits, so two complete segments are 0xF0 ("8A=="). A
// trailing partial byte is padded with NotAvailable entries.
func PackAvailability(entries []Availability) ([]byte, error) {
	out := make([]byte, (len(entries)+3)/4)
	for i, a := range entries {
		if a > 0b11 {
			return nil, fmt.Errorf("availability entry %d is %d, not a 2-bit value", i, a)
		}
		out[i/4] |= byte(a) << (6 - 2*(i%4))
	}
	return out, nil
}

// UnpackAvailability splits a bit array into entries, four per byte, first
// entry in the most significant bits (see PackAvailability). The array
// cannot say how many entries are real: entries beyond the probe's count
// are padding, so a caller looks only at the first len(probe.SegmentIDs).
func UnpackAvailability(bits []byte) []Availability {
	out := make([]Availability, 4*len(bits))
	for i := range out {
		out[i] = Availability(bits[i/4]>>(6-2*(i%4))) & 0b11
	}
	return out
}
