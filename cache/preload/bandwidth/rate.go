// Package bandwidth limits preload's WAN fetches: Rate, a bandwidth
// written as admins write it ("20Mbit/s", "2.5MB/s"), and Limiter, a
// token bucket of bytes that readers wait on. It is pure apart from the
// clock, which tests replace.
package bandwidth

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Rate is a bandwidth in bits per second; 0 means no limit.
type Rate int64

// rateUnits maps units to bits per second. Prefixes are decimal (SI), as
// link speeds are; "b"/"bit" are bits and "B" bytes, so case matters for
// that letter only.
var rateUnits = map[string]float64{
	"bit/s": 1, "kbit/s": 1e3, "mbit/s": 1e6, "gbit/s": 1e9, "tbit/s": 1e12,
	"bps": 1, "kbps": 1e3, "mbps": 1e6, "gbps": 1e9, "tbps": 1e12,
	"b/s": 1, "kb/s": 1e3, "mb/s": 1e6, "gb/s": 1e9, "tb/s": 1e12,
}

// byteUnits are bytes per second (binary prefixes allowed too).
var byteUnits = map[string]float64{
	"B/s": 8, "kB/s": 8e3, "KB/s": 8e3, "MB/s": 8e6, "GB/s": 8e9,
	"KiB/s": 8 << 10, "MiB/s": 8 << 20, "GiB/s": 8 << 30,
}

// ParseRate reads "20Mbit/s", "20Mbps", "500kbit/s", "2.5MB/s" (bytes),
// "1MiB/s", or "0" (no limit). Bits use decimal prefixes, as link speeds
// do.
func ParseRate(text string) (Rate, error) {
	t := strings.TrimSpace(strings.ReplaceAll(text, "_", ""))
	if t == "0" {
		return 0, nil
	}
	i := strings.IndexFunc(t, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	if i <= 0 {
		return 0, badRate(text)
	}
	num, unit := t[:i], strings.TrimSpace(t[i:])
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || f < 0 {
		return 0, badRate(text)
	}
	mult, ok := byteUnits[unit]
	if !ok && !strings.Contains(unit, "B") {
		mult, ok = rateUnits[strings.ToLower(unit)]
	}
	if !ok {
		return 0, badRate(text)
	}
	bits := f * mult
	if bits >= math.MaxInt64 {
		return 0, fmt.Errorf("invalid bandwidth %q: too large", text)
	}
	if bits > 0 && bits < 8 {
		return 0, fmt.Errorf("invalid bandwidth %q: below one byte per second", text)
	}
	return Rate(math.Round(bits)), nil
}

func badRate(text string) error {
	return fmt.Errorf("invalid bandwidth %q: expected a number and a unit, e.g. \"20Mbit/s\", \"500kbit/s\" or \"2.5MB/s\" (bytes), or 0 for no limit", text)
}

// BytesPerSecond is the rate in bytes per second.
func (r Rate) BytesPerSecond() float64 { return float64(r) / 8 }

// String formats the rate with the largest decimal bit unit that divides
// it: "20Mbit/s", "1500kbit/s", "0" for no limit.
func (r Rate) String() string {
	if r == 0 {
		return "0"
	}
	for _, u := range []struct {
		name string
		mult int64
	}{{"Tbit/s", 1e12}, {"Gbit/s", 1e9}, {"Mbit/s", 1e6}, {"kbit/s", 1e3}} {
		if int64(r)%u.mult == 0 {
			return strconv.FormatInt(int64(r)/u.mult, 10) + u.name
		}
	}
	return strconv.FormatInt(int64(r), 10) + "bit/s"
}

// MarshalText formats the rate as String does.
func (r Rate) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalText parses a rate.
func (r *Rate) UnmarshalText(text []byte) error {
	v, err := ParseRate(string(text))
	if err != nil {
		return err
	}
	*r = v
	return nil
}

// Min returns the tighter of two limits (0 is no limit).
func Min(a, b Rate) Rate {
	switch {
	case a == 0:
		return b
	case b == 0:
		return a
	}
	return min(a, b)
}
