package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/outpost-appliance/outpost/cache/preload"
	"github.com/outpost-appliance/outpost/cache/preload/bandwidth"
)

// PreloadList is the answer to GET /api/v1/preload.
type PreloadList struct {
	Running bool `json:"running"`
	// Limit is the total limit of all preloading ("0": none); RateBits
	// the current total rate.
	Limit    bandwidth.Rate `json:"limit"`
	RateBits float64        `json:"rate_bits_per_second"`
	Jobs     []preload.Job  `json:"jobs"`
}

// maxInjectCI bounds an uploaded content information (V1 of a 512 GiB
// file).
const maxInjectCI = 256 << 20

func (s *Server) registerPreload(read, change func(string, http.HandlerFunc)) {
	read("GET "+Prefix+"preload", s.handlePreloadList)
	change("POST "+Prefix+"preload", s.handlePreloadAdd)
	read("GET "+Prefix+"preload/{id}", s.handlePreloadJob)
	change("DELETE "+Prefix+"preload/{id}", s.handlePreloadCancel)
	change("POST "+Prefix+"inject", s.handleInjectBegin)
	change("PUT "+Prefix+"inject/{session}", s.handleInjectPut)
}

// preloadStats avoids a typed nil in the metrics' interface.
func preloadStats(p *preload.Service) interface{ Stats() preload.Stats } {
	if p == nil {
		return nil
	}
	return p
}

func (s *Server) handlePreloadList(w http.ResponseWriter, r *http.Request) {
	list := PreloadList{Jobs: []preload.Job{}}
	if p := s.opts.Preload; p != nil {
		st := p.Stats()
		list.Running, list.Limit, list.RateBits = st.Running, st.Limit, st.RateBits
		list.Jobs = append(list.Jobs, p.Jobs()...)
	}
	writeJSON(w, http.StatusOK, list)
}

func (s *Server) handlePreloadJob(w http.ResponseWriter, r *http.Request) {
	if s.opts.Preload == nil {
		writeError(w, http.StatusNotFound, preload.ErrNoJob.Error())
		return
	}
	j, err := s.opts.Preload.Job(r.PathValue("id"))
	if err != nil {
		s.writePreloadError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, j)
}

func (s *Server) handlePreloadAdd(w http.ResponseWriter, r *http.Request) {
	if s.opts.Preload == nil {
		writeError(w, http.StatusServiceUnavailable, preload.ErrNotRunning.Error())
		return
	}
	var spec preload.Spec
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&spec); err != nil {
		writeError(w, http.StatusBadRequest, "expected a JSON object {\"url\", \"versions\", \"limit\", \"window\"}: "+err.Error())
		return
	}
	j, added, err := s.opts.Preload.Add(spec)
	if err != nil {
		s.writePreloadError(w, err)
		return
	}
	code := http.StatusOK
	if added {
		code = http.StatusCreated
		s.log.Info("preload requested over the API", "job", j.ID, "url", j.URL, "remote", r.RemoteAddr)
	}
	writeJSON(w, code, j)
}

func (s *Server) handlePreloadCancel(w http.ResponseWriter, r *http.Request) {
	if s.opts.Preload == nil {
		writeError(w, http.StatusNotFound, preload.ErrNoJob.Error())
		return
	}
	j, err := s.opts.Preload.Cancel(r.PathValue("id"))
	if err != nil {
		s.writePreloadError(w, err)
		return
	}
	s.log.Info("preload cancelled over the API", "job", j.ID, "url", j.URL, "remote", r.RemoteAddr)
	writeJSON(w, http.StatusOK, j)
}

func (s *Server) handleInjectBegin(w http.ResponseWriter, r *http.Request) {
	if s.opts.Preload == nil {
		writeError(w, http.StatusServiceUnavailable, preload.ErrNotRunning.Error())
		return
	}
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxInjectCI))
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, "content information: "+err.Error())
		return
	}
	plan, err := s.opts.Preload.Injector().Begin(r.Context(), r.URL.Query().Get("name"), raw)
	if err != nil {
		s.writePreloadError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, plan)
}

func (s *Server) handleInjectPut(w http.ResponseWriter, r *http.Request) {
	if s.opts.Preload == nil {
		writeError(w, http.StatusServiceUnavailable, preload.ErrNotRunning.Error())
		return
	}
	offset, err := strconv.ParseUint(r.URL.Query().Get("offset"), 10, 64)
	if err != nil {
		writeError(w, http.StatusBadRequest, "offset: expected the content offset of the first byte sent")
		return
	}
	if r.ContentLength < 0 {
		writeError(w, http.StatusLengthRequired, "Content-Length is required")
		return
	}
	res, err := s.opts.Preload.Injector().Put(r.Context(), r.PathValue("session"), offset, uint64(r.ContentLength), r.Body)
	if err != nil {
		s.writePreloadError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// writePreloadError maps the preload service's errors to HTTP.
func (s *Server) writePreloadError(w http.ResponseWriter, err error) {
	var perm *preload.PermanentError
	var mismatch *preload.MismatchError
	switch {
	case errors.Is(err, preload.ErrNotRunning):
		writeError(w, http.StatusServiceUnavailable, err.Error())
	case errors.Is(err, preload.ErrNoJob), errors.Is(err, preload.ErrNoSession):
		writeError(w, http.StatusNotFound, err.Error())
	case errors.Is(err, preload.ErrFinished):
		writeError(w, http.StatusConflict, err.Error())
	case errors.Is(err, preload.ErrInjectDisabled), errors.Is(err, preload.ErrWrongSecret):
		writeError(w, http.StatusForbidden, err.Error())
	case errors.As(err, &mismatch):
		writeError(w, http.StatusUnprocessableEntity, err.Error())
	case errors.As(err, &perm), errors.Is(err, preload.ErrInvalidSpec):
		writeError(w, http.StatusBadRequest, err.Error())
	default:
		s.log.Error("preload over the API", "err", err)
		writeError(w, http.StatusInternalServerError, err.Error())
	}
}

// PreloadJobs fetches GET /api/v1/preload.
func (c *Client) PreloadJobs(ctx context.Context) (*PreloadList, []byte, error) {
	return fetch[PreloadList](ctx, c, "preload", nil)
}

// PreloadJob fetches GET /api/v1/preload/{id}.
func (c *Client) PreloadJob(ctx context.Context, id string) (*preload.Job, []byte, error) {
	return fetch[preload.Job](ctx, c, "preload/"+url.PathEscape(id), nil)
}

// AddPreload asks for a preload (POST /api/v1/preload); added is false
// when a job for the same URL was already under way and is returned.
func (c *Client) AddPreload(ctx context.Context, spec preload.Spec) (job *preload.Job, added bool, err error) {
	body, _ := json.Marshal(spec)
	raw, code, err := c.send(ctx, http.MethodPost, "preload", nil, bytes.NewReader(body), int64(len(body)), "application/json", 30*time.Second)
	if err != nil {
		return nil, false, err
	}
	job = new(preload.Job)
	if err := json.Unmarshal(raw, job); err != nil {
		return nil, false, fmt.Errorf("api: preload: %w", err)
	}
	return job, code == http.StatusCreated, nil
}

// CancelPreload cancels a job (DELETE /api/v1/preload/{id}).
func (c *Client) CancelPreload(ctx context.Context, id string) (*preload.Job, error) {
	raw, _, err := c.send(ctx, http.MethodDelete, "preload/"+url.PathEscape(id), nil, nil, 0, "", 30*time.Second)
	if err != nil {
		return nil, err
	}
	job := new(preload.Job)
	if err := json.Unmarshal(raw, job); err != nil {
		return nil, fmt.Errorf("api: preload: %w", err)
	}
	return job, nil
}

// InjectBegin sends content information (POST /api/v1/inject) and
// returns what the appliance lacks of its content.
func (c *Client) InjectBegin(ctx context.Context, name string, ci []byte) (*preload.InjectPlan, error) {
	q := url.Values{}
	if name != "" {
		q.Set("name", name)
	}
	raw, _, err := c.send(ctx, http.MethodPost, "inject", q, bytes.NewReader(ci), int64(len(ci)), "application/octet-stream", 0)
	if err != nil {
		return nil, err
	}
	plan := new(preload.InjectPlan)
	if err := json.Unmarshal(raw, plan); err != nil {
		return nil, fmt.Errorf("api: inject: %w", err)
	}
	return plan, nil
}

// InjectPut streams content bytes [offset, offset+length) from r (PUT
// /api/v1/inject/{session}).
func (c *Client) InjectPut(ctx context.Context, session string, offset uint64, r io.Reader, length int64) (*preload.InjectResult, error) {
	q := url.Values{"offset": {strconv.FormatUint(offset, 10)}}
	raw, _, err := c.send(ctx, http.MethodPut, "inject/"+url.PathEscape(session), q, r, length, "application/octet-stream", 0)
	if err != nil {
		return nil, err
	}
	res := new(preload.InjectResult)
	if err := json.Unmarshal(raw, res); err != nil {
		return nil, fmt.Errorf("api: inject: %w", err)
	}
	return res, nil
}

// APIError is an error answer of the API.
type APIError struct {
	Method, URL string
	Code        int
	Status      string
	Message     string
}

func (e *APIError) Error() string {
	if e.Message != "" {
		return fmt.Sprintf("api: %s %s: %s: %s", e.Method, e.URL, e.Status, e.Message)
	}
	return fmt.Sprintf("api: %s %s: %s", e.Method, e.URL, e.Status)
}

// send makes a request with a body (nil: none) of the given length.
// timeout 0 leaves the duration to ctx (uploads of many GB); the answer
// is read up to 16 MiB.
func (c *Client) send(ctx context.Context, method, endpoint string, query url.Values, body io.Reader, length int64, contentType string, timeout time.Duration) ([]byte, int, error) {
	u := strings.TrimSuffix(c.BaseURL, "/") + Prefix + endpoint
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, 0, fmt.Errorf("api: %w", err)
	}
	if body != nil {
		req.ContentLength = length
		req.Header.Set("Content-Type", contentType)
		if length == 0 {
			req.Body = http.NoBody
		}
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: timeout}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, 0, fmt.Errorf("api: is outpost running? %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, resp.StatusCode, fmt.Errorf("api: %s: %w", u, err)
	}
	if resp.StatusCode/100 != 2 {
		e := &APIError{Method: method, URL: u, Code: resp.StatusCode, Status: resp.Status}
		var msg struct{ Error string }
		if json.Unmarshal(raw, &msg) == nil {
			e.Message = msg.Error
		}
		return nil, resp.StatusCode, e
	}
	return raw, resp.StatusCode, nil
}

// WritePreload prints the preload service's state and its jobs, a line
// each (`outpost preload --list`, `outpost status`).
func WritePreload(w io.Writer, list *PreloadList) {
	limit := "no total limit"
	if list.Limit > 0 {
		limit = "total limit " + list.Limit.String()
	}
	state := "running"
	if !list.Running {
		state = "NOT running"
	}
	fmt.Fprintf(w, "preload service %s, %s, %s now\n", state, limit, FormatRate(list.RateBits))
	if len(list.Jobs) == 0 {
		fmt.Fprintln(w, "no jobs")
		return
	}
	for _, j := range list.Jobs {
		fmt.Fprintf(w, "%s  %-9s %5.1f%%  %s  %s\n", j.ID, j.State, j.Progress*100, j.URL, PreloadJobDetail(&j))
	}
}

// PreloadJobDetail is what else matters about a job in its state: rate
// and ETA, window, next attempt, last error.
func PreloadJobDetail(j *preload.Job) string {
	var parts []string
	switch j.State {
	case preload.Running:
		parts = append(parts, FormatRate(j.RateBits))
		if j.ETASeconds > 0 {
			parts = append(parts, "ETA "+formatSeconds(j.ETASeconds))
		}
	case preload.Paused:
		parts = append(parts, "window "+j.Window.String()+", opens "+j.Next.Local().Format("2006-01-02 15:04"))
	case preload.Retrying:
		parts = append(parts, fmt.Sprintf("attempt %d failed, next %s", j.Attempts, j.Next.Local().Format("15:04:05")))
	}
	if j.Error != "" && j.State != preload.Completed {
		parts = append(parts, "error: "+j.Error)
	}
	return strings.Join(parts, ", ")
}

// FormatRate writes a rate in bits per second for people ("20.0 Mbit/s").
func FormatRate(bits float64) string {
	switch {
	case bits >= 1e9:
		return fmt.Sprintf("%.2f Gbit/s", bits/1e9)
	case bits >= 1e6:
		return fmt.Sprintf("%.1f Mbit/s", bits/1e6)
	}
	return fmt.Sprintf("%.0f kbit/s", bits/1e3)
}

func formatSeconds(s float64) string {
	d := time.Duration(s * float64(time.Second)).Round(time.Second)
	if d >= time.Hour {
		d = d.Round(time.Minute)
	}
	return d.String()
}
