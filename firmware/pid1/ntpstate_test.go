package pid1

import (
	"strings"
	"testing"
	"time"
)

// ntpdate sets the clock with settimeofday, so the status learns of NTP
// from the service itself.
func TestNTPStateForTheStatus(t *testing.T) {
	tests := []struct {
		name   string
		last   time.Duration // ago; 0: never
		synced bool
		source string
	}{
		{"never synced", 0, false, "never synced"},
		{"synced a minute ago", time.Minute, true, "ntp pool.example"},
		{"one resync missed", ntpInterval + time.Minute, true, "last synced"},
		{"stale", 2*ntpInterval + time.Minute, false, "last synced"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := &ntpState{}
			if tt.last > 0 {
				n.synced("pool.example", time.Now().Add(-tt.last))
			}
			ts := n.timeSync()
			if ts.Synced != tt.synced || !strings.Contains(ts.Source, tt.source) || ts.Now.IsZero() {
				t.Errorf("%+v", ts)
			}
		})
	}
}
