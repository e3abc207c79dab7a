package api

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/outpost-appliance/outpost/firmware/config"
	"github.com/outpost-appliance/outpost/firmware/events"
	"github.com/outpost-appliance/outpost/firmware/history"
)

// History is GET /api/v1/history: the traffic samples behind the status
// page's chart, oldest first.
type History struct {
	IntervalSeconds float64          `json:"interval_seconds"`
	Samples         []history.Sample `json:"samples"`
}

func (s *Server) handleLeaders(w http.ResponseWriter, r *http.Request) {
	l := s.report.Leaders()
	if !l.Running && s.opts.Config != nil {
		l.Forwarding = s.opts.Config.Leader.Forward
	}
	writeJSON(w, http.StatusOK, l)
}

func (s *Server) handleDiscovery(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.report.Discovery())
}

func (s *Server) handleHistory(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, History{IntervalSeconds: s.opts.History.Interval().Seconds(), Samples: s.opts.History.Samples()})
}

// handleConfig answers the effective configuration; Secret fields encode
// as "(redacted)".
func (s *Server) handleConfig(w http.ResponseWriter, r *http.Request) {
	cfg := s.opts.Config
	if cfg == nil {
		cfg = config.Default()
	}
	writeJSON(w, http.StatusOK, struct {
		Source   string         `json:"source"`
		SafeMode bool           `json:"safe_mode"`
		Config   *config.Config `json:"config"`
	}{s.opts.ConfigSource, s.opts.ConfigErr != nil, cfg})
}

func (s *Server) handleEventCatalog(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, events.Catalog())
}

// handleEvents answers GET /api/v1/events?id=14&id=6401&since=1h&until=…&before=SEQ&limit=N.
func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request) {
	q, err := ParseEventQuery(r.URL.Query()["id"], r.URL.Query().Get("since"), r.URL.Query().Get("until"),
		r.URL.Query().Get("before"), r.URL.Query().Get("limit"), time.Now())
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if s.opts.Events == nil {
		writeJSON(w, http.StatusOK, events.Page{Events: []events.Event{}})
		return
	}
	writeJSON(w, http.StatusOK, s.opts.Events.Query(q))
}

// ParseEventQuery reads an events query: IDs (repeated or comma
// separated), since and until as RFC 3339 times or durations before now
// ("90m", "2d"), a before cursor and a limit (1–1000).
func ParseEventQuery(ids []string, since, until, before, limit string, now time.Time) (events.Query, error) {
	var q events.Query
	for _, list := range ids {
		for _, s := range strings.Split(list, ",") {
			if s = strings.TrimSpace(s); s == "" {
				continue
			}
			n, err := strconv.Atoi(s)
			if err != nil || n <= 0 {
				return q, fmt.Errorf("id: %q is not an event ID (docs/events.md)", s)
			}
			q.IDs = append(q.IDs, events.ID(n))
		}
	}
	var err error
	if q.Since, err = parseTime("since", since, now); err != nil {
		return q, err
	}
	if q.Until, err = parseTime("until", until, now); err != nil {
		return q, err
	}
	if before != "" {
		if q.Before, err = strconv.ParseUint(before, 10, 64); err != nil {
			return q, fmt.Errorf("before: %q is not an event sequence number", before)
		}
	}
	if limit != "" {
		if q.Limit, err = strconv.Atoi(limit); err != nil || q.Limit < 1 || q.Limit > 1000 {
			return q, fmt.Errorf("limit: expected a number from 1 to 1000")
		}
	}
	return q, nil
}

func parseTime(name, v string, now time.Time) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	if d, err := config.ParseDuration(v); err == nil {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("%s: %q is neither an RFC 3339 time (2026-03-01T12:00:00Z) nor a duration (90m, 2d)", name, v)
}
