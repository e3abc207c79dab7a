package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/outpost-appliance/outpost/firmware/config"
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
	raw, err := c.get(ctx, "status")
	if err != nil {
		return nil, nil, err
	}
	var st Status
	if err := json.Unmarshal(raw, &st); err != nil {
		return nil, raw, fmt.Errorf("api: status: %w", err)
	}
	return &st, raw, nil
}

func (c *Client) get(ctx context.Context, endpoint string) ([]byte, error) {
	url := strings.TrimSuffix(c.BaseURL, "/") + Prefix + endpoint
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
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
		return nil, fmt.Errorf("api: %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct{ Error string }
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			return nil, fmt.Errorf("api: %s: %s: %s", url, resp.Status, e.Error)
		}
		return nil, fmt.Errorf("api: %s: %s", url, resp.Status)
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
	fmt.Fprintln(tw, "  NAME\tSTATE\tROLE\tADDRESSES")
	for _, i := range st.Interfaces {
		state := "down"
		if i.Up {
			state = "up"
		}
		role := i.Role
		if role == "" {
			role = "-"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", i.Name, state, role, strings.Join(i.Addresses, " "))
	}
	return tw.Flush()
}
