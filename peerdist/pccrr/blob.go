package pccrr

import (
	"encoding/binary"
	"fmt"
	"time"
)

// Extensible Blob version 1 carries segment ages (protocols.md §3.4): a
// 2-byte big-endian version, a 1-byte unit, a 1-byte count, then per
// segment its index and a 3-byte little-endian age.
const (
	BlobVersion1 = 1
	MaxAge       = 1<<24 - 1 // largest encodable age, in units
)

// AgeUnit is SegmentAgeUnits: the unit of every age in the blob.
type AgeUnit uint8

// The defined units. We send hundredths of a second (protocols.md §3.4).
const (
	AgeSeconds      AgeUnit = 1
	AgeDeciseconds  AgeUnit = 2
	AgeCentiseconds AgeUnit = 3
	AgeMilliseconds AgeUnit = 4
)

// Valid reports whether u is one of the four defined units.
func (u AgeUnit) Valid() bool { return u >= AgeSeconds && u <= AgeMilliseconds }

// Unit is the length of one unit (0 for an undefined unit).
func (u AgeUnit) Unit() time.Duration {
	switch u {
	case AgeSeconds:
		return time.Second
	case AgeDeciseconds:
		return 100 * time.Millisecond
	case AgeCentiseconds:
		return 10 * time.Millisecond
	case AgeMilliseconds:
		return time.Millisecond
	}
	return 0
}

// Duration converts an age in this unit. The blob's own unit field is what
// counts: the spec's field text claims a default of "hundredths of
// milliseconds", which the unit list contradicts (protocols.md §9 row 11).
func (u AgeUnit) Duration(age uint32) time.Duration { return time.Duration(age) * u.Unit() }

// Age converts d to this unit, rounding down, clamped to 0..MaxAge (about
// 46.6 hours in hundredths of a second). An undefined unit gives 0.
func (u AgeUnit) Age(d time.Duration) uint32 {
	unit := u.Unit()
	if unit == 0 || d <= 0 {
		return 0
	}
	return uint32(min(d/unit, MaxAge))
}

func (u AgeUnit) String() string {
	switch u {
	case AgeSeconds:
		return "s"
	case AgeDeciseconds:
		return "0.1s"
	case AgeCentiseconds:
		return "0.01s"
	case AgeMilliseconds:
		return "ms"
	}
	return fmt.Sprintf("AgeUnit(%d)", uint8(u))
}

// SegmentAge is an ENCODED_SEGMENT_AGE: how long a segment has been in the
// cache. Index is relative to the first segment the message addresses.
type SegmentAge struct {
	Index uint8
	Age   uint32 // in the blob's unit, at most MaxAge
}

// SegmentAges is the content of an Extensible Blob version 1.
type SegmentAges struct {
	Units AgeUnit
	Ages  []SegmentAge
}

// Duration is the age of Ages[i] in the blob's unit.
func (a SegmentAges) Duration(i int) time.Duration { return a.Units.Duration(a.Ages[i].Age) }

// ParseSegmentAges decodes an Extensible Blob v1. It checks, in the order
// of protocols.md §3.4: at least 2 bytes, version 1, at least 4 bytes, a
// defined unit, at least 4·(count+1) bytes; bytes beyond the ages are
// ignored. On an error the receiver drops the blob, not the message that
// carried it. Errors wrap ErrMalformed. Ages holds at most 255 entries.
func ParseSegmentAges(blob []byte) (SegmentAges, error) {
	if len(blob) < 2 {
		return SegmentAges{}, malformed("pccrr: extensible blob of %d bytes", len(blob))
	}
	if v := binary.BigEndian.Uint16(blob); v != BlobVersion1 {
		return SegmentAges{}, malformed("pccrr: extensible blob version %d", v)
	}
	if len(blob) < 4 {
		return SegmentAges{}, malformed("pccrr: extensible blob v1 of %d bytes", len(blob))
	}
	a := SegmentAges{Units: AgeUnit(blob[2])}
	if !a.Units.Valid() {
		return SegmentAges{}, malformed("pccrr: extensible blob: unknown age unit %d", blob[2])
	}
	count := int(blob[3])
	if len(blob) < 4*(count+1) {
		return SegmentAges{}, malformed("pccrr: extensible blob: %d ages need %d bytes, have %d",
			count, 4*(count+1), len(blob))
	}
	if count > 0 {
		a.Ages = make([]SegmentAge, count)
		for i := range a.Ages {
			e := blob[4+4*i:]
			a.Ages[i] = SegmentAge{Index: e[0], Age: uint32(e[1]) | uint32(e[2])<<8 | uint32(e[3])<<16}
		}
	}
	return a, nil
}

// AppendTo appends the blob (without the SizeOfExtensibleBlob field, which
// the message adds). It refuses an undefined unit, more than 255 ages and
// ages above MaxAge (use AgeUnit.Age to clamp).
func (a SegmentAges) AppendTo(dst []byte) ([]byte, error) {
	if !a.Units.Valid() {
		return dst, malformed("pccrr: extensible blob: unknown age unit %d", uint8(a.Units))
	}
	if len(a.Ages) > 255 {
		return dst, malformed("pccrr: extensible blob: %d ages, at most 255", len(a.Ages))
	}
	for _, e := range a.Ages {
		if e.Age > MaxAge {
			return dst, malformed("pccrr: extensible blob: age %d exceeds 24 bits", e.Age)
		}
	}
	dst = binary.BigEndian.AppendUint16(dst, BlobVersion1)
	dst = append(dst, byte(a.Units), byte(len(a.Ages)))
	for _, e := range a.Ages {
		dst = append(dst, e.Index, byte(e.Age), byte(e.Age>>8), byte(e.Age>>16))
	}
	return dst, nil
}

// Marshal returns the blob bytes, ready for ExtensibleBlob.
func (a SegmentAges) Marshal() ([]byte, error) {
	b, err := a.AppendTo(make([]byte, 0, 4+4*len(a.Ages)))
	if err != nil {
		return nil, err
	}
	return b, nil
}
