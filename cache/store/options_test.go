package store

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestProfilesAndOptions(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*Options)
		err    string
	}{
		{"small", func(o *Options) { o.Profile = ProfileSmall }, ""},
		{"large", func(o *Options) { o.Profile = ProfileLarge }, ""},
		{"default profile", func(o *Options) { o.Profile = "" }, ""},
		{"unknown profile", func(o *Options) { o.Profile = "medium" }, `unknown profile "medium"`},
		{"no dir", func(o *Options) { o.Dir = "" }, "Dir is empty"},
		{"negative limit", func(o *Options) { o.LimitBytes = -1 }, "LimitBytes -1 is negative"},
		{"percent over 100", func(o *Options) { o.LimitPercent = 120 }, "LimitPercent 120"},
		{"floor of 100%", func(o *Options) { o.MinFreePercent = 100 }, "MinFreePercent 100"},
		{"negative age", func(o *Options) { o.MaxAge = -time.Hour }, "MaxAge -1h0m0s is negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opt := DefaultOptions(t.TempDir())
			opt.Logger = testLogger(t)
			tc.change(&opt)
			s, err := Open(context.Background(), opt)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("Open: %v, want an error mentioning %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			ingestReplay(t, s, newReplay(1, 1000), "")
			if st := s.Stats(); st.Blocks != 1 || st.LimitBytes == 0 {
				t.Fatalf("stats %+v", st)
			}
		})
	}
}

// Reads never write: access times and hits are noted in memory and
// written in one batch later.
func TestAccessTimesAreBatched(t *testing.T) {
	ctx := context.Background()
	clock := newClock()
	s := openStore(t, testOptions(t, t.TempDir(), clock))
	r := newReplay(1, 1000)
	ingestReplay(t, s, r, "")
	clock.Advance(time.Hour)
	buf := make([]byte, MaxBlockBytes)
	for range 100 {
		if _, err := s.ReadBlock(ctx, r.id, 0, buf); err != nil {
			t.Fatal(err)
		}
	}
	stored, err := s.snapshotRecord(r.id)
	if err != nil {
		t.Fatal(err)
	}
	if stored.hits != 0 || stored.lastAccess == clock.Now().UnixNano() {
		t.Fatalf("reads wrote the record: hits %d", stored.hits)
	}
	if info, _ := s.Segment(ctx, r.id); info.Hits != 100 || !info.LastAccess.Equal(clock.Now()) {
		t.Fatalf("pending access not visible: %+v", info)
	}
	if err := s.Maintain(ctx); err != nil {
		t.Fatal(err)
	}
	stored, _ = s.snapshotRecord(r.id)
	if stored.hits != 100 || stored.lastAccess != clock.Now().UnixNano() {
		t.Fatalf("after the flush: hits %d, last access %v", stored.hits, timeOf(stored.lastAccess))
	}
}
