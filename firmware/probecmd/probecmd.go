// Package probecmd implements `outpost probe`: send BranchCache discovery
// probes into a subnet for the segments of a .ci file, exactly as iPXE
// does, and print who answers with what. Operators use it the way they
// use BCMon: to see whether a subnet (its leader, its peers) can serve
// some content.
package probecmd

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/outpost-appliance/outpost/firmware/cli"
	"github.com/outpost-appliance/outpost/leader/prober"
	"github.com/outpost-appliance/outpost/peerdist/pccrc"
	"github.com/outpost-appliance/outpost/peerdist/pccrd"
)

const usage = `usage: outpost probe --iface IF --ci FILE.ci [--wait D] [--v2] [--no-repeat] [--family 4|6] [--json]

Multicasts PeerDist discovery probes on interface IF for every segment of
FILE.ci, as iPXE does: one V1 segment per probe, upper-case hex, to
239.255.255.250 and ff02::c port 3702, from an ephemeral port, repeated once
after 1 s with the same MessageID. Prints every ProbeMatch received within
--wait of the last probe. Exits 1 when no segment was answered at all.

  --v2         send one V2 probe for all segments instead (as Windows 8+
               clients do for V2 content)
  --no-repeat  do not repeat the probes after 1 s
  --family     probe over IPv4 (4) or IPv6 (6) only; a responder answers
               one copy of a MessageID, so with both it picks either
`

// Result is what `probe` prints (as JSON with --json).
type Result struct {
	Interface string          `json:"interface"`
	Segments  []SegmentResult `json:"segments"`
	// Answered counts segments at least one responder holds.
	Answered int `json:"answered"`
}

// SegmentResult is the answers about one segment.
type SegmentResult struct {
	Index     int      `json:"index"`
	SegmentID string   `json:"segment_id"`
	MessageID string   `json:"message_id"`
	Matches   []Answer `json:"matches"`
}

// Answer is one responder's answer about a segment.
type Answer struct {
	From   string   `json:"from"`
	XAddrs []string `json:"xaddrs"`
	// BlockCount (V1) is the number of blocks the responder holds.
	BlockCount uint32 `json:"block_count,omitempty"`
	// Availability (V2): "full" or "partial".
	Availability    string `json:"availability,omitempty"`
	MetadataVersion uint32 `json:"metadata_version"`
	InstanceID      uint64 `json:"instance_id"`
	MessageNumber   uint64 `json:"message_number"`
	Endpoint        string `json:"endpoint"`
}

// Options are the probing parameters.
type Options struct {
	Interface string
	Wait      time.Duration
	V2        bool
	NoRepeat  bool
	// Family is 4 or 6 to probe over one address family only (0: both).
	Family int
	// Port is the source port (0: ephemeral).
	Port int
}

// Run executes `outpost probe` with args and returns the exit code.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("outpost probe", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage) }
	var opt Options
	fs.StringVar(&opt.Interface, "iface", "", "interface to probe on")
	ciPath := fs.String("ci", "", "content information file")
	fs.DurationVar(&opt.Wait, "wait", 2*time.Second, "how long to wait for answers after the last probe")
	fs.BoolVar(&opt.V2, "v2", false, "send one V2 probe for all segments")
	fs.BoolVar(&opt.NoRepeat, "no-repeat", false, "do not repeat the probes after 1 s")
	fs.IntVar(&opt.Family, "family", 0, "4 or 6: one address family only")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	positional, err := cli.ParseFlags(fs, args)
	if err == nil {
		switch {
		case len(positional) != 0:
			err = cli.Usagef("unexpected arguments %q", positional)
		case opt.Interface == "" || *ciPath == "":
			err = cli.Usagef("--iface and --ci are required")
		case opt.Wait <= 0:
			err = cli.Usagef("--wait must be positive")
		case opt.Family != 0 && opt.Family != 4 && opt.Family != 6:
			err = cli.Usagef("--family must be 4 or 6")
		}
	}
	if err != nil {
		return cli.ExitCode(err, "outpost probe", usage, stderr)
	}
	raw, err := os.ReadFile(*ciPath)
	if err != nil {
		return cli.ExitCode(err, "outpost probe", usage, stderr)
	}
	ci, err := pccrc.Parse(raw)
	if err != nil {
		return cli.ExitCode(fmt.Errorf("%s: %w", *ciPath, err), "outpost probe", usage, stderr)
	}
	ids := make([][]byte, len(ci.Segments))
	for i := range ci.Segments {
		ids[i] = ci.ID(i)
	}
	res, err := Probe(ctx, opt, ids)
	if err != nil {
		return cli.ExitCode(err, "outpost probe", usage, stderr)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(res)
	} else {
		printText(stdout, res)
	}
	if res.Answered == 0 {
		return cli.ExitCode(cli.FailedError{Err: errors.New("no segment was answered")}, "outpost probe", usage, stderr)
	}
	return cli.ExitOK
}

// Probe sends the probes for segment IDs on opt.Interface and collects
// the answers.
func Probe(ctx context.Context, opt Options, ids [][]byte) (*Result, error) {
	ifi, err := net.InterfaceByName(opt.Interface)
	if err != nil {
		return nil, fmt.Errorf("interface %q: %w", opt.Interface, err)
	}
	p, err := prober.Open(ctx, prober.Options{Port: opt.Port, Interfaces: []int{ifi.Index}, Loopback: true,
		NoIPv4: opt.Family == 6, NoIPv6: opt.Family == 4})
	if err != nil {
		return nil, err
	}
	defer p.Close()

	res := &Result{Interface: opt.Interface}
	var probes []*pccrd.Probe
	byMessage := map[string][]int{} // MessageID → segment indexes
	for i, id := range ids {
		res.Segments = append(res.Segments, SegmentResult{Index: i, SegmentID: strings.ToUpper(hex.EncodeToString(id))})
		if opt.V2 {
			continue
		}
		pr := &pccrd.Probe{MessageID: pccrd.NewMessageID(), Version: pccrd.V1, SegmentIDs: [][]byte{id}}
		probes = append(probes, pr)
		byMessage[pr.MessageID] = []int{i}
		res.Segments[i].MessageID = pr.MessageID
	}
	if opt.V2 {
		for start := 0; start < len(ids); start += 255 {
			end := min(start+255, len(ids)) // one count byte in the V2 scope
			pr := &pccrd.Probe{MessageID: pccrd.NewMessageID(), Version: pccrd.V2, SegmentIDs: ids[start:end]}
			probes = append(probes, pr)
			for i := start; i < end; i++ {
				byMessage[pr.MessageID] = append(byMessage[pr.MessageID], i)
				res.Segments[i].MessageID = pr.MessageID
			}
		}
	}

	total := opt.Wait
	if !opt.NoRepeat {
		total += time.Second
	}
	rctx, cancel := context.WithTimeout(ctx, total)
	defer cancel()
	var mu sync.Mutex
	var wg sync.WaitGroup
	var recvErr error
	wg.Go(func() {
		recvErr = p.Receive(rctx, func(m prober.Match) {
			mu.Lock()
			defer mu.Unlock()
			record(res, byMessage[m.Match.RelatesTo], ids, m)
		})
	})
	send := func() error {
		for _, pr := range probes {
			if err := p.Send(pr); err != nil {
				return err
			}
		}
		return nil
	}
	err = send()
	if err == nil && !opt.NoRepeat {
		select {
		case <-time.After(time.Second):
			err = send() // the same MessageIDs, as iPXE repeats
		case <-rctx.Done():
		}
	}
	if err != nil {
		cancel()
	}
	wg.Wait()
	if err != nil {
		return nil, err
	}
	if recvErr != nil {
		return nil, recvErr
	}
	for _, s := range res.Segments {
		if len(s.Matches) > 0 {
			res.Answered++
		}
	}
	return res, nil
}

// record adds a ProbeMatch to the segments of its probe that it answers.
func record(res *Result, indexes []int, ids [][]byte, m prober.Match) {
	pm := m.Match
	base := Answer{From: m.From.String(), XAddrs: pm.XAddrs, MetadataVersion: pm.MetadataVersion,
		InstanceID: pm.InstanceID, MessageNumber: pm.MessageNumber, Endpoint: pm.EndpointAddress}
	if pm.Version == pccrd.V1 {
		for t, tok := range pm.Tokens {
			id, err := hex.DecodeString(tok)
			if err != nil {
				continue
			}
			for _, i := range indexes {
				if strings.EqualFold(hex.EncodeToString(ids[i]), hex.EncodeToString(id)) {
					a := base
					if t < len(pm.BlockCounts) {
						a.BlockCount = pm.BlockCounts[t]
					}
					if a.BlockCount == 0 && t < len(pm.BlockCounts) {
						continue // "does not have it" to iPXE
					}
					res.Segments[i].Matches = append(res.Segments[i].Matches, a)
				}
			}
		}
		return
	}
	for k, i := range indexes {
		if k >= len(pm.Availability) || !pm.Availability[k].HasSome() {
			continue
		}
		a := base
		a.Availability = "partial"
		if pm.Availability[k].HasAll() {
			a.Availability = "full"
		}
		res.Segments[i].Matches = append(res.Segments[i].Matches, a)
	}
}

func printText(w io.Writer, res *Result) {
	for _, s := range res.Segments {
		fmt.Fprintf(w, "segment %d %s…\n", s.Index, s.SegmentID[:min(16, len(s.SegmentID))])
		if len(s.Matches) == 0 {
			fmt.Fprintln(w, "  no answer")
			continue
		}
		sort.Slice(s.Matches, func(a, b int) bool { return s.Matches[a].From < s.Matches[b].From })
		for _, m := range s.Matches {
			held := fmt.Sprintf("%d blocks", m.BlockCount)
			if m.Availability != "" {
				held = m.Availability
			}
			fmt.Fprintf(w, "  %-22s %-8s at %s\n", m.From, held, strings.Join(m.XAddrs, " "))
		}
	}
	fmt.Fprintf(w, "%d of %d segments answered on %s\n", res.Answered, len(res.Segments), res.Interface)
}
