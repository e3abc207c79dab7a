package pid1

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// ClockFile keeps the last known time on the data partition, so that a
// board without a real-time clock (a Raspberry Pi) resumes from it instead
// of 1970 when NTP is off or unreachable.
const ClockFile = "clock"

// SaveClock writes now to path atomically (a power cut leaves the old or
// the new time, never a torn file).
func SaveClock(path string, now time.Time) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(now.UTC().Format(time.RFC3339Nano)+"\n"), 0o644); err != nil {
		return fmt.Errorf("pid1: save clock: %w", err)
	}
	f, err := os.Open(tmp)
	if err == nil {
		f.Sync()
		f.Close()
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("pid1: save clock: %w", err)
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// LoadClock reads the time SaveClock wrote.
func LoadClock(path string) (time.Time, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return time.Time{}, fmt.Errorf("pid1: load clock: %w", err)
	}
	t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(string(b)))
	if err != nil {
		return time.Time{}, fmt.Errorf("pid1: load clock %s: %w", path, err)
	}
	return t, nil
}

// RestoreClock moves the system clock forward to the latest of the saved
// time and floor (e.g. the build time of the image) if it is behind them;
// it never moves the clock back. set is the clock setter (SetSystemClock
// on the appliance). It returns the time set, or the zero time if the
// clock was left alone.
func RestoreClock(path string, floor, now time.Time, set func(time.Time) error) (time.Time, error) {
	target := floor
	saved, err := LoadClock(path)
	if err == nil && saved.After(target) {
		target = saved
	}
	if !target.After(now) {
		return time.Time{}, nil
	}
	if err := set(target); err != nil {
		return time.Time{}, fmt.Errorf("pid1: set clock to %s: %w", target.Format(time.RFC3339), err)
	}
	return target, nil
}

// SetSystemClock sets the kernel's clock.
func SetSystemClock(t time.Time) error {
	tv := syscall.NsecToTimeval(t.UnixNano())
	return syscall.Settimeofday(&tv)
}
