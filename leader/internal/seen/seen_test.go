package seen

import (
	"testing"
	"time"
)

func TestSet(t *testing.T) {
	t0 := time.Unix(1000, 0)
	s := New[string](10*time.Second, 3)
	steps := []struct {
		op   string // "add" or "has"
		key  string
		at   time.Duration
		want bool
	}{
		{"add", "a", 0, true},
		{"add", "a", time.Second, false},       // a repeat
		{"has", "a", 9 * time.Second, true},    // still within the TTL
		{"add", "b", 2 * time.Second, true},    //
		{"add", "c", 3 * time.Second, true},    //
		{"add", "d", 4 * time.Second, true},    // full: a is forgotten early
		{"has", "a", 4 * time.Second, false},   //
		{"has", "b", 11 * time.Second, true},   //
		{"has", "b", 12 * time.Second, false},  // expired
		{"add", "b", 12 * time.Second, true},   // new again
		{"has", "d", 14*time.Second - 1, true}, //
		{"has", "d", 14 * time.Second, false},  //
	}
	for i, st := range steps {
		var got bool
		if st.op == "add" {
			got = s.Add(st.key, t0.Add(st.at))
		} else {
			got = s.Has(st.key, t0.Add(st.at))
		}
		if got != st.want {
			t.Errorf("step %d: %s %s at %v = %v, want %v", i, st.op, st.key, st.at, got, st.want)
		}
	}
}
