package service_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"syscall"
	"testing"
	"time"

	"github.com/outpost-appliance/outpost/cache/hostedcache"
	"github.com/outpost-appliance/outpost/cache/retrieval"
	"github.com/outpost-appliance/outpost/cache/store"
	"github.com/outpost-appliance/outpost/firmware/getcmd"
	"github.com/outpost-appliance/outpost/firmware/probecmd"
	"github.com/outpost-appliance/outpost/leader/discovery"
	"github.com/outpost-appliance/outpost/leader/forward"
	"github.com/outpost-appliance/outpost/leader/mcast"
	"github.com/outpost-appliance/outpost/leader/service"
	"github.com/outpost-appliance/outpost/peerdist/pccrc"
	"github.com/outpost-appliance/outpost/peerdist/pccrd"
)

// The lab's actors (leaders, Windows-like peers, clients, a flooder) run
// as children of the test binary inside their network namespaces (`ip
// netns exec`), so that every socket they open, at any time, is theirs.
// The role and its parameters come in the environment.
const (
	envRole   = "OUTPOST_LEADERLAB_ROLE"
	envParams = "OUTPOST_LEADERLAB_PARAMS"
)

func TestMain(m *testing.M) {
	if role := os.Getenv(envRole); role != "" {
		os.Exit(runChild(role, os.Getenv(envParams)))
	}
	os.Exit(m.Run())
}

// Content is deterministic test content: both the test and its children
// generate it from the seed.
type Content struct {
	Seed    uint64
	Size    int
	Version pccrc.Version
}

var labServerSecret = []byte("outpost lab content server")

func (c Content) Generate() ([]byte, *pccrc.Info, error) {
	data := make([]byte, c.Size)
	r := rand.New(rand.NewPCG(c.Seed, 0x5eed))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	var ci *pccrc.Info
	var err error
	if c.Version == pccrc.V2 {
		ci, err = pccrc.GenerateV2(context.Background(), bytes.NewReader(data), labServerSecret)
	} else {
		ci, err = pccrc.GenerateV1(context.Background(), bytes.NewReader(data), pccrc.SHA256, labServerSecret)
	}
	return data, ci, err
}

// LeaderParams configure a leader child: the hosted cache (peer port
// 1337, its store seeded with Hold) and the leader service.
type LeaderParams struct {
	Interfaces []string
	Peers      []forward.PeerConfig
	Secret     string
	Forward    bool
	Hold       []Content
	DataDir    string
	RatePerSrc int
	// XDP is the fast path's mode ("" for none).
	XDP string
}

// PeerParams configure a Windows-like peer: a discovery responder and an
// MS-PCCRR server (port 1337) for content it downloaded.
type PeerParams struct {
	Interface string
	Hold      Content
}

// FloodParams configure the flooder: Count probes for Segment at Rate per
// second, then stop.
type FloodParams struct {
	Interface string
	Segment   []byte
	Count     int
	Rate      int
}

func runChild(role, params string) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var err error
	switch role {
	case "leader":
		var p LeaderParams
		if err = json.Unmarshal([]byte(params), &p); err == nil {
			err = childLeader(ctx, p, log)
		}
	case "peer":
		var p PeerParams
		if err = json.Unmarshal([]byte(params), &p); err == nil {
			err = childPeer(ctx, p, log)
		}
	case "flood":
		var p FloodParams
		if err = json.Unmarshal([]byte(params), &p); err == nil {
			err = childFlood(ctx, p)
		}
	case "probe", "get":
		var args []string
		if err = json.Unmarshal([]byte(params), &args); err == nil {
			run := probecmd.Run
			if role == "get" {
				run = getcmd.Run
			}
			return run(ctx, args, os.Stdout, os.Stderr)
		}
	default:
		err = fmt.Errorf("unknown role %q", role)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 1
	}
	return 0
}

// childLeader runs what the appliance runs for the leader: the hosted
// cache (store + peer port) and the leader service. It answers "stats" on
// stdin with a JSON line and stops at EOF.
func childLeader(ctx context.Context, p LeaderParams, log *slog.Logger) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	opt := store.DefaultOptions(p.DataDir)
	opt.LimitPercent, opt.MinFreePercent = 0, 0
	hosted := hostedcache.New(hostedcache.Config{Store: opt, PeerListen: ":1337", StateDir: p.DataDir, Logger: log})
	hostedReady := make(chan struct{})
	go hosted.Run(ctx, func() { close(hostedReady) })
	select {
	case <-hostedReady:
	case <-time.After(20 * time.Second):
		return fmt.Errorf("hosted cache did not start")
	}
	st := hosted.Store()
	for _, c := range p.Hold {
		data, ci, err := c.Generate()
		if err != nil {
			return err
		}
		for i, seg := range ci.Segments {
			if _, err := st.AddSegmentInfo(ctx, ci.Version, ci.Algo, seg, nil); err != nil {
				return err
			}
			blocks := max(len(seg.BlockHashes), 1)
			for b := range blocks {
				off, n := uint64(0), seg.Size
				if ci.Version == pccrc.V1 {
					o, l := pccrc.BlockSpan(seg.Size, b)
					off, n = uint64(o), l
				}
				start := seg.Offset + off
				if _, err := st.PutPlainBlock(ctx, ci.ID(i), uint32(b), data[start:start+uint64(n)]); err != nil {
					return fmt.Errorf("seed segment %d block %d: %w", i, b, err)
				}
			}
		}
	}
	svc := service.New(service.Config{
		Interfaces: p.Interfaces, PeerPort: 1337, RelayListen: ":81",
		ReplyDelayMin: time.Millisecond, ReplyDelayMax: 5 * time.Millisecond,
		ProbeRatePerSource: p.RatePerSrc, Forward: p.Forward, Peers: p.Peers, Secret: []byte(p.Secret),
		Store: hosted.Store, Logger: log, XDP: p.XDP,
	})
	leaderReady := make(chan struct{})
	errc := make(chan error, 1)
	go func() { errc <- svc.Run(ctx, func() { close(leaderReady) }) }()
	select {
	case <-leaderReady:
	case err := <-errc:
		return err
	}
	fmt.Println("READY")
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		if in.Text() == "stats" {
			b, _ := json.Marshal(svc.Stats())
			fmt.Println(string(b))
		}
	}
	cancel()
	return <-errc
}

// childPeer plays a Windows client that downloaded some content: it
// answers probes for it with its own address and serves the blocks.
func childPeer(ctx context.Context, p PeerParams, log *slog.Logger) error {
	data, ci, err := p.Hold.Generate()
	if err != nil {
		return err
	}
	src := retrieval.NewContentSource(ci, bytes.NewReader(data))
	ln, err := net.Listen("tcp", ":1337")
	if err != nil {
		return err
	}
	go http.Serve(ln, &retrieval.Server{Source: src})
	h := contentHoldings{ids: map[string]int{}}
	for i, seg := range ci.Segments {
		h.ids[string(ci.ID(i))] = max(len(seg.BlockHashes), 1)
	}
	r, err := discovery.Listen(ctx, discovery.Config{Interfaces: []string{p.Interface}, Holdings: h, PeerPort: 1337,
		ReplyDelayMin: time.Millisecond, ReplyDelayMax: 10 * time.Millisecond, InstanceID: 1, Logger: log})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	go func() { io.Copy(io.Discard, os.Stdin); cancel() }()
	fmt.Println("READY")
	return r.Serve(ctx)
}

type contentHoldings struct{ ids map[string]int }

func (h contentHoldings) Holding(_ context.Context, id []byte) discovery.Holding {
	n, ok := h.ids[string(id)]
	if !ok {
		return discovery.Holding{}
	}
	return discovery.Holding{Where: discovery.Local, Blocks: n, Complete: true, Since: time.Now().Add(-time.Minute)}
}

// childFlood multicasts Count probes at Rate per second, each with a new
// MessageID (so that de-duplication does not absorb them), then stops:
// bounded in count and in time (Count/Rate + 5 s at most).
func childFlood(ctx context.Context, p FloodParams) error {
	ifi, err := net.InterfaceByName(p.Interface)
	if err != nil {
		return err
	}
	c, err := mcast.Listen(ctx, "udp4", 0, mcast.Options{})
	if err != nil {
		return err
	}
	defer c.Close()
	deadline := time.Now().Add(time.Duration(p.Count/p.Rate)*time.Second + 5*time.Second)
	dst := netip.AddrPortFrom(mcast.GroupV4, mcast.DiscoveryPort)
	start := time.Now()
	for i := 0; i < p.Count && time.Now().Before(deadline) && ctx.Err() == nil; i++ {
		// Pace to Rate: probe i is due at i/Rate seconds.
		if due := start.Add(time.Duration(i) * time.Second / time.Duration(p.Rate)); time.Until(due) > time.Millisecond {
			time.Sleep(time.Until(due))
		}
		b, err := (&pccrd.Probe{MessageID: pccrd.NewMessageID(), Version: pccrd.V1, SegmentIDs: [][]byte{p.Segment}}).Marshal()
		if err != nil {
			return err
		}
		c.WriteTo(b, dst, netip.Addr{}, ifi.Index)
	}
	fmt.Printf("sent in %v\n", time.Since(start).Round(time.Millisecond))
	return nil
}

// runs in the test process: unused-import guard for testing.
var _ = testing.Verbose
