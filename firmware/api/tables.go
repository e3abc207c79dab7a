package api

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/outpost-appliance/outpost/firmware/config"
	"github.com/outpost-appliance/outpost/firmware/events"
	"github.com/outpost-appliance/outpost/firmware/report"
)

// FormatBytes writes a byte count for people in binary units, as the
// status page does ("512 B", "1.5 MiB").
func FormatBytes(n uint64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB"}
	v, i := float64(n), 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	if i == 0 {
		return strconv.FormatUint(n, 10) + " B"
	}
	return strconv.FormatFloat(v, 'f', 1, 64) + " " + units[i]
}

// FormatPercent writes a ratio as the status page does ("97.5 %").
func FormatPercent(r float64) string { return strconv.FormatFloat(r*100, 'f', 1, 64) + " %" }

// WriteCacheSummary prints the cache's figures in two lines.
func WriteCacheSummary(w io.Writer, c *report.Cache) {
	if !c.Running {
		fmt.Fprintln(w, "cache: the hosted cache is not running")
	} else {
		limit := "no limit"
		if c.LimitBytes > 0 {
			limit = FormatPercent(c.Fill) + " of " + FormatBytes(uint64(c.LimitBytes))
		}
		fmt.Fprintf(w, "cache: %s (%s), %d segments, %d blocks (%d verified)\n",
			FormatBytes(uint64(c.Bytes)), limit, c.HeldSegments, c.Blocks, c.VerifiedBlocks)
	}
	fmt.Fprintf(w, "served %s (WAN saved), pulled %s, hit ratio %s (%d hits, %d misses)\n",
		FormatBytes(c.BytesServed), FormatBytes(c.BytesPulled), FormatPercent(c.HitRatio), c.Hits, c.Misses)
}

// WriteSegments prints segments as a table.
func WriteSegments(w io.Writer, segs []report.Segment, now time.Time) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tV\tSIZE\tHELD\tKIND\tHITS\tFIRST SEEN\tLAST ACCESS\tTAGS")
	for _, s := range segs {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d/%d\t%s\t%d\t%s\t%s\t%s\n", s.ID, s.Version, FormatBytes(uint64(s.Size)),
			s.BlocksHeld, s.Blocks, s.Integrity, s.Hits, ago(now, s.FirstSeen), ago(now, s.LastAccess), strings.Join(s.Tags, ","))
	}
	return tw.Flush()
}

// WriteEvents prints events as a table, oldest first (the latest ends up
// next to the prompt), as they come newest first from the API.
func WriteEvents(w io.Writer, evs []events.Event) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQ\tTIME\tID\tLEVEL\tEVENT")
	for i := len(evs) - 1; i >= 0; i-- {
		e := evs[i]
		fmt.Fprintf(tw, "%d\t%s\t%d\t%s\t%s\n", e.Seq, e.Time.Local().Format("2006-01-02 15:04:05"), e.ID, e.Level, e.Message)
	}
	return tw.Flush()
}

func ago(now, t time.Time) string {
	if t.IsZero() || t.Unix() <= 0 {
		return "never"
	}
	return config.FormatDuration(now.Sub(t).Round(time.Second)) + " ago"
}

// WriteLeaders prints the peer leaders, a line each: state, since when,
// and why when unreachable.
func WriteLeaders(w io.Writer, l *report.Leaders, now time.Time) {
	forwarding := "off"
	if l.Forwarding {
		forwarding = "on"
	}
	fmt.Fprintf(w, "peer leaders (forwarding %s):\n", forwarding)
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  NAME\tADDRESS\tSTATE\tFOR\tFORWARDED\tMATCHES\tRELAYED\t")
	for _, p := range l.Peers {
		since := "-"
		if !p.StateSince.IsZero() {
			since = config.FormatDuration(now.Sub(p.StateSince).Round(time.Second))
		}
		state := p.State
		if p.Reason != "" {
			state += " (" + p.Reason + ")"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%d\t%d\t%s\t\n", p.Name, p.Address, state, since,
			p.ForwardsSent, p.Matches, FormatBytes(p.RelayBytes))
	}
	tw.Flush()
}
