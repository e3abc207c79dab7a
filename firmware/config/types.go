package config

import (
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// The value types below parse the configuration's text forms ("20GiB",
// "28d", "80%", ":9000", …) when go-toml decodes them, so a malformed value
// is reported at its line and column, and print themselves back in the
// same form for `outpost config check` and the API.

// Size is a number of bytes, written "20GiB", "512MiB", "1.5GB" or a plain
// integer number of bytes.
type Size int64

// sizeUnits maps every accepted unit (compared case-insensitively) to its
// multiplier: IEC binary units and SI decimal units.
var sizeUnits = map[string]float64{
	"": 1, "b": 1,
	"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40,
	"kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12,
}

// UnmarshalText parses a size.
func (s *Size) UnmarshalText(text []byte) error {
	v, err := ParseSize(string(text))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// ParseSize parses "20GiB", "512MiB", "1.5GB", "4096" (bytes).
func ParseSize(text string) (Size, error) {
	t := strings.TrimSpace(strings.ReplaceAll(text, "_", ""))
	i := strings.IndexFunc(t, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	if i < 0 {
		i = len(t)
	}
	num, unit := t[:i], strings.TrimSpace(t[i:])
	mult, ok := sizeUnits[strings.ToLower(unit)]
	f, err := strconv.ParseFloat(num, 64)
	if !ok || err != nil || num == "" {
		return 0, fmt.Errorf("invalid size %q: expected a number and a unit, e.g. \"20GiB\" or \"512MiB\" (units B, KiB, MiB, GiB, TiB, KB, MB, GB, TB)", text)
	}
	b := f * mult
	if b > math.MaxInt64 || b != math.Trunc(b) {
		return 0, fmt.Errorf("invalid size %q: not a whole number of bytes that fits in 63 bits", text)
	}
	return Size(b), nil
}

// String formats the size with the largest binary unit that divides it.
func (s Size) String() string {
	if s == 0 {
		return "0"
	}
	for _, u := range []struct {
		name string
		mult int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if s != 0 && int64(s)%u.mult == 0 {
			return fmt.Sprintf("%d%s", int64(s)/u.mult, u.name)
		}
	}
	return fmt.Sprintf("%dB", int64(s))
}

// MarshalText formats the size as String does.
func (s Size) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Duration is a time span written as Go durations with days and weeks
// added: "28d", "15s", "1d12h", "500ms". "0" is zero.
type Duration time.Duration

var durationUnits = map[string]time.Duration{
	"ns": time.Nanosecond, "us": time.Microsecond, "µs": time.Microsecond,
	"ms": time.Millisecond, "s": time.Second, "m": time.Minute,
	"h": time.Hour, "d": 24 * time.Hour, "w": 7 * 24 * time.Hour,
}

// UnmarshalText parses a duration.
func (d *Duration) UnmarshalText(text []byte) error {
	v, err := ParseDuration(string(text))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// ParseDuration parses "28d", "15s", "1d12h", "1.5h", "0".
func ParseDuration(text string) (time.Duration, error) {
	bad := func() (time.Duration, error) {
		return 0, fmt.Errorf("invalid duration %q: expected a number and a unit, e.g. \"28d\", \"12h\" or \"15s\" (units ms, s, m, h, d, w)", text)
	}
	t := strings.TrimSpace(text)
	if t == "0" {
		return 0, nil
	}
	if t == "" {
		return bad()
	}
	var total float64
	for t != "" {
		i := strings.IndexFunc(t, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
		if i <= 0 {
			return bad()
		}
		num := t[:i]
		t = t[i:]
		j := strings.IndexFunc(t, func(r rune) bool { return (r >= '0' && r <= '9') || r == '.' })
		if j < 0 {
			j = len(t)
		}
		unit, ok := durationUnits[t[:j]]
		f, err := strconv.ParseFloat(num, 64)
		if !ok || err != nil {
			return bad()
		}
		t = t[j:]
		total += f * float64(unit)
	}
	if total > math.MaxInt64 {
		return 0, fmt.Errorf("invalid duration %q: too long", text)
	}
	return time.Duration(total), nil
}

// String formats the duration in days, hours, minutes, seconds and
// milliseconds, leaving out zero parts: "28d", "1d12h", "15s", "1m30s".
func (d Duration) String() string { return FormatDuration(time.Duration(d)) }

// FormatDuration formats a duration the way the configuration writes it.
func FormatDuration(d time.Duration) string {
	if d == 0 {
		return "0s"
	}
	var b strings.Builder
	if d < 0 {
		b.WriteByte('-')
		d = -d
	}
	for _, u := range []struct {
		name string
		unit time.Duration
	}{{"d", 24 * time.Hour}, {"h", time.Hour}, {"m", time.Minute}, {"s", time.Second}, {"ms", time.Millisecond}, {"us", time.Microsecond}, {"ns", time.Nanosecond}} {
		if n := d / u.unit; n > 0 {
			fmt.Fprintf(&b, "%d%s", n, u.name)
			d -= n * u.unit
		}
	}
	return b.String()
}

// MarshalText formats the duration as String does.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// Percent is a percentage from 0 to 100, written 80, 2.5, or "80%".
type Percent float64

// UnmarshalText parses a percentage; the range is checked by Validate.
func (p *Percent) UnmarshalText(text []byte) error {
	t := strings.TrimSuffix(strings.TrimSpace(string(text)), "%")
	f, err := strconv.ParseFloat(strings.TrimSpace(t), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return fmt.Errorf("invalid percentage %q: expected a number from 0 to 100, e.g. 80 or \"80%%\"", text)
	}
	*p = Percent(f)
	return nil
}

// String formats the percentage as "80%".
func (p Percent) String() string { return strconv.FormatFloat(float64(p), 'f', -1, 64) + "%" }

// MarshalText formats the percentage as String does.
func (p Percent) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// ListenAddr is a TCP or UDP listening address "[host]:port": ":9000",
// "0.0.0.0:1339", "[::1]:9000", "localhost:9000". Empty means the listener
// is turned off.
type ListenAddr string

// UnmarshalText checks the address's form; port clashes between services
// are checked by Validate.
func (a *ListenAddr) UnmarshalText(text []byte) error {
	s := strings.TrimSpace(string(text))
	if s != "" {
		if _, _, err := SplitListenAddr(s); err != nil {
			return err
		}
	}
	*a = ListenAddr(s)
	return nil
}

// SplitListenAddr returns the host and port of a listening address.
func SplitListenAddr(s string) (host string, port int, err error) {
	h, p, err := net.SplitHostPort(s)
	if err != nil {
		return "", 0, fmt.Errorf("invalid listening address %q: expected [host]:port, e.g. \":9000\" or \"192.168.1.10:9000\"", s)
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 1 || n > 65535 {
		return "", 0, fmt.Errorf("invalid listening address %q: the port must be a number from 1 to 65535", s)
	}
	if h != "" && h != "localhost" {
		if _, err := netip.ParseAddr(h); err != nil {
			return "", 0, fmt.Errorf("invalid listening address %q: the host must be empty (all addresses), an IP address or localhost", s)
		}
	}
	return h, n, nil
}

// Port returns the port of the address, or 0 when it is off.
func (a ListenAddr) Port() int {
	if a == "" {
		return 0
	}
	_, p, _ := SplitListenAddr(string(a))
	return p
}

// Prefix is an interface address with its prefix length: "192.168.1.10/24",
// "2001:db8::10/64".
type Prefix struct{ netip.Prefix }

// UnmarshalText parses an interface address.
func (p *Prefix) UnmarshalText(text []byte) error {
	v, err := netip.ParsePrefix(strings.TrimSpace(string(text)))
	if err != nil {
		return fmt.Errorf("invalid interface address %q: expected an IP address with its prefix length, e.g. \"192.168.1.10/24\" or \"2001:db8::10/64\"", text)
	}
	p.Prefix = v
	return nil
}

// MarshalText formats the address as "192.168.1.10/24".
func (p Prefix) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// Addr is an IP address: a gateway or a DNS server.
type Addr struct{ netip.Addr }

// UnmarshalText parses an IP address.
func (a *Addr) UnmarshalText(text []byte) error {
	v, err := netip.ParseAddr(strings.TrimSpace(string(text)))
	if err != nil {
		return fmt.Errorf("invalid IP address %q: expected e.g. \"192.168.1.1\" or \"2001:db8::1\"", text)
	}
	a.Addr = v
	return nil
}

// MarshalText formats the address.
func (a Addr) MarshalText() ([]byte, error) { return []byte(a.String()), nil }

// DelayRange is a random delay between Min and Max, written "1ms-65ms", or
// a fixed delay written as one duration ("20ms").
type DelayRange struct {
	Min, Max time.Duration
}

// UnmarshalText parses a delay range.
func (r *DelayRange) UnmarshalText(text []byte) error {
	lo, hi, found := strings.Cut(strings.TrimSpace(string(text)), "-")
	min, err := ParseDuration(lo)
	if err != nil {
		return fmt.Errorf("invalid delay %q: expected MIN-MAX durations, e.g. \"1ms-65ms\", or one duration", text)
	}
	max := min
	if found {
		if max, err = ParseDuration(hi); err != nil {
			return fmt.Errorf("invalid delay %q: expected MIN-MAX durations, e.g. \"1ms-65ms\", or one duration", text)
		}
	}
	*r = DelayRange{Min: min, Max: max}
	return nil
}

// String formats the range as "1ms-65ms", or one duration when fixed.
func (r DelayRange) String() string {
	if r.Min == r.Max {
		return FormatDuration(r.Min)
	}
	return FormatDuration(r.Min) + "-" + FormatDuration(r.Max)
}

// MarshalText formats the range as String does.
func (r DelayRange) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// Secret is a shared secret or token. It never prints: String, the text,
// JSON and TOML forms and log values all show "(redacted)" when it is set,
// so the effective configuration can be displayed and logged safely. Use
// Reveal to get the value.
type Secret struct{ value string }

const redacted = "(redacted)"

// NewSecret wraps a secret value.
func NewSecret(value string) Secret { return Secret{value} }

// Reveal returns the secret's value.
func (s Secret) Reveal() string { return s.value }

// IsSet reports whether the secret has a value.
func (s Secret) IsSet() bool { return s.value != "" }

// String returns "(redacted)", or "" when the secret is not set.
func (s Secret) String() string {
	if s.value == "" {
		return ""
	}
	return redacted
}

// LogValue keeps the secret out of logs.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalText redacts the secret.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText stores the secret.
func (s *Secret) UnmarshalText(text []byte) error {
	s.value = string(text)
	return nil
}

// enum checks text against the allowed values of an enumerated key.
func enum(text []byte, allowed ...string) (string, error) {
	s := strings.TrimSpace(string(text))
	for _, a := range allowed {
		if s == a {
			return s, nil
		}
	}
	return "", fmt.Errorf("invalid value %q: expected one of %s", text, quoteList(allowed))
}

func quoteList(values []string) string {
	q := make([]string, len(values))
	for i, v := range values {
		q[i] = strconv.Quote(v)
	}
	if len(q) == 1 {
		return q[0]
	}
	return strings.Join(q[:len(q)-1], ", ") + " or " + q[len(q)-1]
}

// Role says what an interface is for.
type Role string

// Interface roles.
const (
	// RoleLAN is a branch subnet: Outpost answers discovery probes and
	// serves clients on it.
	RoleLAN Role = "lan"
	// RoleWAN is an uplink: used to reach other leaders, NTP and the
	// management network; no discovery responder.
	RoleWAN Role = "wan"
)

// UnmarshalText accepts "lan" or "wan".
func (r *Role) UnmarshalText(text []byte) error {
	s, err := enum(text, string(RoleLAN), string(RoleWAN))
	*r = Role(s)
	return err
}

// Profile sizes the segment store for the board's memory.
type Profile string

// Store profiles.
const (
	ProfileSmall Profile = "small" // boards with 512 MiB – 1 GiB of RAM
	ProfileLarge Profile = "large" // 4 GiB and more
)

// UnmarshalText accepts "small" or "large".
func (p *Profile) UnmarshalText(text []byte) error {
	s, err := enum(text, string(ProfileSmall), string(ProfileLarge))
	*p = Profile(s)
	return err
}

// XDPMode says how the discovery fast path attaches.
type XDPMode string

// XDP modes.
const (
	XDPNative  XDPMode = "native"
	XDPGeneric XDPMode = "generic"
	XDPOff     XDPMode = "off"
	XDPAuto    XDPMode = "auto" // native where the driver supports it, else generic, else off
)

// UnmarshalText accepts "native", "generic", "off" or "auto".
func (m *XDPMode) UnmarshalText(text []byte) error {
	s, err := enum(text, string(XDPNative), string(XDPGeneric), string(XDPOff), string(XDPAuto))
	*m = XDPMode(s)
	return err
}

// LogLevel is the least severe level that is logged.
type LogLevel string

// Log levels.
const (
	LogDebug LogLevel = "debug"
	LogInfo  LogLevel = "info"
	LogWarn  LogLevel = "warn"
	LogError LogLevel = "error"
)

// UnmarshalText accepts "debug", "info", "warn" or "error".
func (l *LogLevel) UnmarshalText(text []byte) error {
	s, err := enum(text, string(LogDebug), string(LogInfo), string(LogWarn), string(LogError))
	*l = LogLevel(s)
	return err
}
