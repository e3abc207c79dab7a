package api

import (
	"encoding/hex"
	"errors"
	"net/http"
	"strconv"

	"github.com/outpost-appliance/outpost/cache/store"
	"github.com/outpost-appliance/outpost/firmware/events"
	"github.com/outpost-appliance/outpost/firmware/report"
)

// Flushed is the answer to POST /api/v1/cache/flush.
type Flushed struct {
	Flushed  bool  `json:"flushed"`
	Segments int64 `json:"segments"` // what the store held before
	Bytes    int64 `json:"bytes"`
}

// Deleted is the answer to DELETE /api/v1/segments/{id}.
type Deleted struct {
	Deleted string `json:"deleted"`
}

func (s *Server) handleCache(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.report.Cache())
}

func (s *Server) handleFlush(w http.ResponseWriter, r *http.Request) {
	st := s.report.Store()
	if st == nil {
		writeError(w, http.StatusServiceUnavailable, report.ErrNotRunning.Error())
		return
	}
	before := st.Stats()
	if err := st.Flush(r.Context()); err != nil {
		s.log.Error("flushing the store over the API", "err", err)
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	s.report.ForgetTop()
	s.log.Warn("store flushed over the API", "remote", r.RemoteAddr, "segments", before.Segments, "bytes", before.Bytes)
	s.opts.Events.Log(events.StoreFlushed, events.Fields{"remote": r.RemoteAddr, "segments": before.Segments, "bytes": before.Bytes})
	writeJSON(w, http.StatusOK, Flushed{Flushed: true, Segments: before.Segments, Bytes: before.Bytes})
}

func (s *Server) handleSegments(w http.ResponseWriter, r *http.Request) {
	limit, ok := intParam(w, r, "limit", 100, 1, 1000)
	if !ok {
		return
	}
	page, err := s.report.Segments(r.Context(), r.URL.Query().Get("after"), limit)
	if err != nil {
		s.writeReportError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, page)
}

func (s *Server) handleTopSegments(w http.ResponseWriter, r *http.Request) {
	limit, ok := intParam(w, r, "limit", 10, 1, 100)
	if !ok {
		return
	}
	top, err := s.report.Top(r.Context(), limit)
	if err != nil {
		s.writeReportError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, top)
}

func (s *Server) handleSegment(w http.ResponseWriter, r *http.Request) {
	id, err := report.ParseID(r.PathValue("id"))
	if err != nil {
		s.writeReportError(w, err)
		return
	}
	seg, err := s.report.Segment(r.Context(), id)
	if err != nil {
		s.writeReportError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, seg)
}

func (s *Server) handleDeleteSegment(w http.ResponseWriter, r *http.Request) {
	id, err := report.ParseID(r.PathValue("id"))
	if err != nil {
		s.writeReportError(w, err)
		return
	}
	st := s.report.Store()
	if st == nil {
		s.writeReportError(w, report.ErrNotRunning)
		return
	}
	if err := st.DeleteSegment(r.Context(), id); err != nil {
		s.writeReportError(w, err)
		return
	}
	s.report.ForgetTop()
	hexID := hex.EncodeToString(id)
	s.log.Info("segment purged over the API", "segment", hexID, "remote", r.RemoteAddr)
	s.opts.Events.Log(events.SegmentPurged, events.Fields{"segment": hexID, "remote": r.RemoteAddr})
	writeJSON(w, http.StatusOK, Deleted{Deleted: hexID})
}

// writeReportError maps the reports' errors to HTTP.
func (s *Server) writeReportError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, report.ErrNotRunning):
		writeError(w, http.StatusServiceUnavailable, err.Error())
	case errors.Is(err, report.ErrBadID):
		writeError(w, http.StatusBadRequest, err.Error())
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, "no such segment in the store")
	default:
		s.log.Error("reading the store", "err", err)
		writeError(w, http.StatusInternalServerError, err.Error())
	}
}

// intParam reads an integer query parameter within [lo, hi], answering
// 400 itself when it is not one.
func intParam(w http.ResponseWriter, r *http.Request, name string, def, lo, hi int) (int, bool) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, true
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		writeError(w, http.StatusBadRequest, name+": expected a number from "+strconv.Itoa(lo)+" to "+strconv.Itoa(hi))
		return 0, false
	}
	return n, true
}
