// Package window is the daily schedule window of preload jobs: a span of
// the day such as "01:00-05:00" (the box's local time) or
// "22:00-06:00 Europe/Berlin" (a named time zone; windows may cross
// midnight) outside which a job pauses. It is pure: callers pass the time.
package window

import (
	"fmt"
	"strings"
	"time"

	// Named zones work on the appliance, whose image has no zoneinfo files.
	_ "time/tzdata"
)

const minutesPerDay = 24 * 60

// Window is a daily span [Start, End) in minutes after midnight, in Zone
// (empty: the box's local time). The zero value is "always open".
// End < Start crosses midnight.
type Window struct {
	Start, End int
	Zone       string
	loc        *time.Location
}

// Always is the window that never closes.
var Always = Window{}

// IsAlways reports whether the window never closes.
func (w Window) IsAlways() bool { return w.Start == 0 && w.End == 0 }

// Parse reads "HH:MM-HH:MM" optionally followed by a space and an IANA
// time-zone name; "" is Always. "24:00" is accepted as an end. A window
// that starts where it ends is refused (is it empty or the whole day?);
// write "" or "00:00-24:00" for the whole day.
func Parse(text string) (Window, error) {
	s := strings.TrimSpace(text)
	if s == "" {
		return Always, nil
	}
	bad := func(why string) (Window, error) {
		return Window{}, fmt.Errorf("invalid window %q: %s; expected \"HH:MM-HH:MM\" such as \"01:00-05:00\" (the box's local time) or \"22:00-06:00 Europe/Berlin\"", text, why)
	}
	// The zone is the last word when it is not part of the span.
	fields := strings.Fields(s)
	zone := ""
	if last := fields[len(fields)-1]; len(fields) > 1 && strings.IndexFunc(last, isZoneRune) >= 0 {
		zone, fields = last, fields[:len(fields)-1]
	}
	span := strings.ReplaceAll(strings.Join(fields, ""), "–", "-") // an en dash, as people write spans
	from, to, ok := strings.Cut(span, "-")
	if !ok {
		return bad("no '-' between start and end")
	}
	start, err := parseClock(from, false)
	if err != nil {
		return bad(err.Error())
	}
	end, err := parseClock(to, true)
	if err != nil {
		return bad(err.Error())
	}
	w := Window{Start: start, End: end % minutesPerDay, Zone: zone}
	switch {
	case start == 0 && end == minutesPerDay:
		w = Window{Zone: zone} // the whole day
		w.End = 0
	case start == end:
		return bad("start and end are the same")
	}
	if zone != "" {
		loc, err := time.LoadLocation(zone)
		if err != nil || zone == "Local" {
			return bad(fmt.Sprintf("unknown time zone %q", zone))
		}
		w.loc = loc
	}
	if w.Start == 0 && w.End == 0 {
		return Always, nil
	}
	return w, nil
}

func isZoneRune(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r == '/' || r == '_'
}

// parseClock reads "H:MM" or "HH:MM"; "24:00" only as an end.
func parseClock(s string, isEnd bool) (int, error) {
	s = strings.TrimSpace(s)
	h, m, ok := strings.Cut(s, ":")
	if !ok || len(h) < 1 || len(h) > 2 || len(m) != 2 {
		return 0, fmt.Errorf("%q is not a time of day HH:MM", s)
	}
	hh, mm := 0, 0
	for _, c := range h {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("%q is not a time of day HH:MM", s)
		}
		hh = hh*10 + int(c-'0')
	}
	for _, c := range m {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("%q is not a time of day HH:MM", s)
		}
		mm = mm*10 + int(c-'0')
	}
	switch {
	case hh == 24 && mm == 0 && isEnd:
		return minutesPerDay, nil
	case hh > 23 || mm > 59:
		return 0, fmt.Errorf("%q is not a time of day (00:00 to 23:59)", s)
	}
	return hh*60 + mm, nil
}

// location is the zone the window is read in.
func (w Window) location() *time.Location {
	if w.loc != nil {
		return w.loc
	}
	if w.Zone != "" {
		if loc, err := time.LoadLocation(w.Zone); err == nil {
			return loc
		}
	}
	return time.Local
}

// Open reports whether t falls inside the window.
func (w Window) Open(t time.Time) bool {
	if w.IsAlways() {
		return true
	}
	lt := t.In(w.location())
	m := lt.Hour()*60 + lt.Minute()
	if w.Start < w.End {
		return m >= w.Start && m < w.End
	}
	return m >= w.Start || m < w.End // crosses midnight
}

// Next returns when the window next opens (if it is closed at t) or
// closes (if it is open at t): the first boundary strictly after t. It
// returns the zero time for Always.
func (w Window) Next(t time.Time) time.Time {
	if w.IsAlways() {
		return time.Time{}
	}
	boundary := w.Start
	if w.Open(t) {
		boundary = w.End
	}
	loc := w.location()
	lt := t.In(loc)
	// The boundary today, tomorrow or the day after (a DST change can
	// make a wall-clock time repeat or vanish; time.Date normalises it).
	for day := 0; day <= 2; day++ {
		c := time.Date(lt.Year(), lt.Month(), lt.Day()+day, boundary/60, boundary%60, 0, 0, loc)
		if c.After(t) && w.Open(c) != w.Open(t) {
			return c
		}
	}
	// A DST jump swallowed every candidate: try an hour later.
	return w.Next(t.Add(time.Hour))
}

// String formats the window as Parse reads it ("" for Always).
func (w Window) String() string {
	if w.IsAlways() {
		return ""
	}
	s := fmt.Sprintf("%02d:%02d-%02d:%02d", w.Start/60, w.Start%60, w.End/60, w.End%60)
	if w.End == 0 {
		s = s[:6] + "24:00"
	}
	if w.Zone != "" {
		s += " " + w.Zone
	}
	return s
}

// MarshalText formats the window as String does.
func (w Window) MarshalText() ([]byte, error) { return []byte(w.String()), nil }

// UnmarshalText parses a window.
func (w *Window) UnmarshalText(text []byte) error {
	v, err := Parse(string(text))
	if err != nil {
		return err
	}
	*w = v
	return nil
}

// Equal reports whether two windows are the same span in the same zone.
func (w Window) Equal(o Window) bool { return w.Start == o.Start && w.End == o.End && w.Zone == o.Zone }
