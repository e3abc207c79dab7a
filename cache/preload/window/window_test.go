package window

import (
	"strings"
	"testing"
	"time"
)

func at(t *testing.T, loc *time.Location, s string) time.Time {
	t.Helper()
	v, err := time.ParseInLocation("2006-01-02 15:04", s, loc)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestParse(t *testing.T) {
	tests := []struct {
		in, want string // want "" with wantErr: the error contains errPart
		errPart  string
	}{
		{"", "", ""},
		{"01:00-05:00", "01:00-05:00", ""},
		{" 1:00 - 05:00 ", "01:00-05:00", ""},
		{"22:00-06:00", "22:00-06:00", ""},
		{"22:00–06:00", "22:00-06:00", ""}, // en dash
		{"18:30-24:00", "18:30-24:00", ""},
		{"00:00-24:00", "", ""}, // the whole day
		{"01:00-05:00 Europe/Berlin", "01:00-05:00 Europe/Berlin", ""},
		{"01:00-05:00 UTC", "01:00-05:00 UTC", ""},
		{"01:00", "", "no '-'"},
		{"01:00-01:00", "", "the same"},
		{"25:00-05:00", "", "not a time of day"},
		{"24:00-05:00", "", "not a time of day"},
		{"01:60-05:00", "", "not a time of day"},
		{"1-5", "", "not a time of day HH:MM"},
		{"01:00-05:00 Mars/Olympus", "", "unknown time zone"},
		{"01:00-05:00 Local", "", "unknown time zone"},
		{"ab:cd-05:00", "", "not a time of day"},
	}
	for _, tt := range tests {
		w, err := Parse(tt.in)
		if tt.errPart != "" {
			if err == nil || !strings.Contains(err.Error(), tt.errPart) || !strings.Contains(err.Error(), "expected") {
				t.Errorf("Parse(%q) = %v, %v; want an error containing %q", tt.in, w, err, tt.errPart)
			}
			continue
		}
		if err != nil || w.String() != tt.want {
			t.Errorf("Parse(%q) = %q, %v; want %q", tt.in, w.String(), err, tt.want)
		}
		if back, err := Parse(w.String()); err != nil || !back.Equal(w) {
			t.Errorf("Parse(String(%q)) = %v, %v", tt.in, back, err)
		}
	}
}

// Open and Next with an injected clock: windows inside a day, across
// midnight, ending at midnight, in a named zone, and across DST changes.
func TestOpenAndNext(t *testing.T) {
	utc := time.UTC
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		window   string
		loc      *time.Location // of the times below
		now      string
		wantOpen bool
		wantNext string // in loc
	}{
		{"", utc, "2026-03-01 12:00", true, ""},
		{"01:00-05:00 UTC", utc, "2026-03-01 00:59", false, "2026-03-01 01:00"},
		{"01:00-05:00 UTC", utc, "2026-03-01 01:00", true, "2026-03-01 05:00"},
		{"01:00-05:00 UTC", utc, "2026-03-01 04:59", true, "2026-03-01 05:00"},
		{"01:00-05:00 UTC", utc, "2026-03-01 05:00", false, "2026-03-02 01:00"},
		{"01:00-05:00 UTC", utc, "2026-03-01 23:30", false, "2026-03-02 01:00"},
		{"22:00-06:00 UTC", utc, "2026-03-01 21:59", false, "2026-03-01 22:00"},
		{"22:00-06:00 UTC", utc, "2026-03-01 22:00", true, "2026-03-02 06:00"},
		{"22:00-06:00 UTC", utc, "2026-03-01 23:59", true, "2026-03-02 06:00"},
		{"22:00-06:00 UTC", utc, "2026-03-02 00:00", true, "2026-03-02 06:00"},
		{"22:00-06:00 UTC", utc, "2026-03-02 05:59", true, "2026-03-02 06:00"},
		{"22:00-06:00 UTC", utc, "2026-03-02 06:00", false, "2026-03-02 22:00"},
		{"22:00-06:00 UTC", utc, "2026-12-31 23:00", true, "2027-01-01 06:00"},
		{"18:00-24:00 UTC", utc, "2026-03-01 23:59", true, "2026-03-02 00:00"},
		{"18:00-24:00 UTC", utc, "2026-03-02 00:00", false, "2026-03-02 18:00"},
		{"00:00-05:00 UTC", utc, "2026-03-01 23:00", false, "2026-03-02 00:00"},
		// The same instant read in another zone.
		{"01:00-05:00 Europe/Berlin", utc, "2026-01-15 00:30", true, "2026-01-15 04:00"},
		{"01:00-05:00 Europe/Berlin", utc, "2026-07-15 00:30", true, "2026-07-15 03:00"},
		{"01:00-05:00 Europe/Berlin", utc, "2026-07-15 03:30", false, "2026-07-15 23:00"},
		// DST starts in Berlin on 2026-03-29 at 02:00 (clocks jump to 03:00).
		{"01:00-05:00 Europe/Berlin", berlin, "2026-03-29 01:30", true, "2026-03-29 05:00"},
		{"02:30-04:00 Europe/Berlin", berlin, "2026-03-29 01:00", false, "2026-03-29 03:30"},
		// DST ends on 2026-10-25 at 03:00 (back to 02:00).
		{"01:00-02:30 Europe/Berlin", berlin, "2026-10-25 00:30", false, "2026-10-25 01:00"},
	}
	for _, tt := range tests {
		w, err := Parse(tt.window)
		if err != nil {
			t.Fatal(err)
		}
		now := at(t, tt.loc, tt.now)
		if got := w.Open(now); got != tt.wantOpen {
			t.Errorf("%q at %s: open %v, want %v", tt.window, tt.now, got, tt.wantOpen)
		}
		next := w.Next(now)
		got := ""
		if !next.IsZero() {
			got = next.In(tt.loc).Format("2006-01-02 15:04")
		}
		if got != tt.wantNext {
			t.Errorf("%q at %s: next change %q, want %q", tt.window, tt.now, got, tt.wantNext)
		}
		if !next.IsZero() && w.Open(next) == w.Open(now) {
			t.Errorf("%q at %s: the state does not change at %s", tt.window, tt.now, got)
		}
	}
}

// Local time is the box's zone.
func TestLocalZone(t *testing.T) {
	saved := time.Local
	defer func() { time.Local = saved }()
	time.Local = time.FixedZone("branch", 3*3600)
	w, _ := Parse("01:00-05:00")
	if !w.Open(time.Date(2026, 3, 1, 23, 30, 0, 0, time.UTC)) { // 02:30 at the branch
		t.Error("not open at 02:30 local")
	}
	if w.Open(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)) {
		t.Error("open at 15:00 local")
	}
}
