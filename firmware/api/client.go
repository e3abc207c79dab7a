package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/outpost-appliance/outpost/firmware/config"
	"github.com/outpost-appliance/outpost/firmware/events"
	"github.com/outpost-appliance/outpost/firmware/report"
)

// DefaultURL is where `outpost status` looks for a running instance.
const DefaultURL = "http://localhost:9000"

// Client talks to a running instance's API.
type Client struct {
	// BaseURL is "http://host:port".
	BaseURL string
	Token   string
	HTTP    *http.Client // nil: a client with a 10 s timeout
}

// Status fetches GET /api/v1/status, returning it decoded and raw.
func (c *Client) Status(ctx context.Context) (*Status, []byte, error) {
	return fetch[Status](ctx, c, "status", nil)
}

// Cache fetches GET /api/v1/cache.
func (c *Client) Cache(ctx context.Context) (*report.Cache, []byte, error) {
	return fetch[report.Cache](ctx, c, "cache", nil)
}

// Leaders fetches GET /api/v1/leaders.
func (c *Client) Leaders(ctx context.Context) (*report.Leaders, []byte, error) {
	return fetch[report.Leaders](ctx, c, "leaders", nil)
}

// Segments fetches one page of GET /api/v1/segments.
func (c *Client) Segments(ctx context.Context, after string, limit int) (*report.SegmentPage, []byte, error) {
	q := url.Values{}
	if after != "" {
		q.Set("after", after)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	return fetch[report.SegmentPage](ctx, c, "segments", q)
}

// DeleteSegment purges a segment (DELETE /api/v1/segments/{id}).
func (c *Client) DeleteSegment(ctx context.Context, id string) error {
	_, err := c.do(ctx, http.MethodDelete, "segments/"+url.PathEscape(id), nil)
	return err
}

// Events fetches GET /api/v1/events with query (id, since, until, before,
// limit).
func (c *Client) Events(ctx context.Context, query url.Values) (*events.Page, []byte, error) {
	return fetch[events.Page](ctx, c, "events", query)
}

// fetch GETs an endpoint and decodes it, returning the raw JSON too.
func fetch[T any](ctx context.Context, c *Client, endpoint string, query url.Values) (*T, []byte, error) {
	raw, err := c.do(ctx, http.MethodGet, endpoint, query)
	if err != nil {
		return nil, nil, err
	}
	v := new(T)
	if err := json.Unmarshal(raw, v); err != nil {
		return nil, raw, fmt.Errorf("api: %s: %w", endpoint, err)
	}
	return v, raw, nil
}

func (c *Client) do(ctx context.Context, method, endpoint string, query url.Values) ([]byte, error) {
	u := strings.TrimSuffix(c.BaseURL, "/") + Prefix + endpoint
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return nil, fmt.Errorf("api: %w", err)
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Second}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("api: is outpost running? %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("api: %s: %w", u, err)
	}
	if resp.StatusCode/100 != 2 {
		var e struct{ Error string }
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			return nil, fmt.Errorf("api: %s %s: %s: %s", method, u, resp.Status, e.Error)
		}
		return nil, fmt.Errorf("api: %s %s: %s", method, u, resp.Status)
	}
	return body, nil
}

// WriteStatus prints a status for people: the box, its configuration
// state, its services and its interfaces.
func WriteStatus(w io.Writer, st *Status, now time.Time) error {
	ready := "ready"
	if !st.Ready {
		ready = "NOT READY"
	}
	fmt.Fprintf(w, "outpost %s on %s (%s), up %s, %s\n", st.Version, st.Hostname, st.Mode,
		config.FormatDuration(time.Duration(st.UptimeSeconds*float64(time.Second)).Round(time.Second)), ready)
	if m := st.Memory; m.ProcessAnonBytes > 0 {
		fmt.Fprintf(w, "memory: outpost %.1f MiB anonymous (Go heap %.1f MiB); box %.0f of %.0f MiB available\n",
			mib(m.ProcessAnonBytes), mib(m.GoHeapBytes), mib(m.SystemAvailableBytes), mib(m.SystemTotalBytes))
	}
	if st.Board != "" {
		fmt.Fprintf(w, "board: %s\n", st.Board)
	}
	clock := "NOT synchronized"
	if st.Time.Synced {
		clock = "synchronized"
	}
	fmt.Fprintf(w, "clock: %s (%s), %s\n", st.Time.Now.Format(time.RFC3339), st.Time.Source, clock)
	if st.Config.SafeMode {
		fmt.Fprintf(w, "SAFE MODE: the configuration %s has errors; running with safe defaults:\n", st.Config.Source)
		for _, p := range st.Config.Errors {
			fmt.Fprintf(w, "  %s\n", p)
		}
	} else {
		fmt.Fprintf(w, "configuration: %s\n", st.Config.Source)
	}

	for _, n := range st.Notices {
		fmt.Fprintf(w, "NOTICE: %s\n", n)
	}
	if st.TLSThumbprint != "" {
		fmt.Fprintf(w, "hosted cache HTTPS certificate thumbprint (SHA-1): %s\n", st.TLSThumbprint)
	}

	fmt.Fprintln(w, "\nservices:")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  NAME\tSTATE\tFOR\tRESTARTS\tLAST ERROR")
	for _, s := range st.Services {
		state := string(s.State)
		if !s.NextStart.IsZero() {
			state += fmt.Sprintf(" (retry in %s)", config.FormatDuration(s.NextStart.Sub(now).Round(time.Second)))
		}
		lastErr, _, _ := strings.Cut(s.LastError, "\n")
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%d\t%s\n", s.Name, state, config.FormatDuration(now.Sub(s.Since).Round(time.Second)), s.Restarts, lastErr)
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	fmt.Fprintln(w, "\ninterfaces:")
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  NAME\tSTATE\tROLE\tXDP\tADDRESSES")
	for _, i := range st.Interfaces {
		state := "down"
		if i.Up {
			state = "up"
		}
		role := i.Role
		if role == "" {
			role = "-"
		}
		xdp := i.XDP
		if xdp == "" {
			xdp = "-"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", i.Name, state, role, xdp, strings.Join(i.Addresses, " "))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	return writeXDP(w, st.Interfaces)
}

// writeXDP prints what the discovery fast path did on each interface it
// runs on (or why it does not).
func writeXDP(w io.Writer, ifaces []Interface) error {
	var lines []string
	for _, i := range ifaces {
		switch {
		case i.XDPError != "":
			lines = append(lines, fmt.Sprintf("  %s: off: %s", i.Name, i.XDPError))
		case len(i.XDPCounters) > 0:
			c := i.XDPCounters
			passed := uint64(0)
			for name, n := range c {
				if strings.HasPrefix(name, "pass-") {
					passed += n
				}
			}
			lines = append(lines, fmt.Sprintf("  %s: %s: %d probes captured (%d for held segments), dropped %d not held and %d over the rate, %d passed to the socket path",
				i.Name, i.XDP, c["captured"], c["captured-held"], c["drop-not-held"], c["drop-rate-limit"], passed))
		}
	}
	if len(lines) == 0 {
		return nil
	}
	_, err := fmt.Fprintf(w, "\ndiscovery fast path (XDP):\n%s\n", strings.Join(lines, "\n"))
	return err
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }
