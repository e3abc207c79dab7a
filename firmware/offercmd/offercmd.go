// Package offercmd implements `outpost offer`: play a Windows client in
// hosted-cache mode for a file. It serves the file's blocks with MS-PCCRR,
// offers its segments to a hosted cache with MS-PCHC (v1.0 over HTTPS like
// Windows 7, or v2.0 over HTTP like Windows 8 and later), and waits until
// the hosted cache holds every block. Admins use it to pre-stage content
// and to check that a hosted cache (Outpost or Windows Server) works.
package offercmd

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/outpost-appliance/outpost/cache/hostedcache"
	"github.com/outpost-appliance/outpost/cache/retrieval"
	"github.com/outpost-appliance/outpost/firmware/cli"
	"github.com/outpost-appliance/outpost/peerdist/pccrc"
	"github.com/outpost-appliance/outpost/peerdist/pccrr"
	"github.com/outpost-appliance/outpost/peerdist/pchc"
)

const usage = `usage: outpost offer --to HOST:PORT --version 1|2 --ci FILE.ci --data FILE
                     [--https [--insecure | --thumbprint HEX]] [--listen ADDR] [--tag NAME]
                     [--timeout D] [--json]

Offers the segments of FILE.ci to a hosted cache as a Windows client would,
serves their blocks from FILE (the whole content) with MS-PCCRR on --listen,
and waits until the hosted cache holds every block.

  --version 1   PCHC v1.0 (INITIAL_OFFER, then SEGMENT_INFO if asked), as
                Windows 7 sends it, normally with --https to port 443
  --version 2   PCHC v2.0 (BATCHED_OFFER), as Windows 8 and later send it
                over HTTP (Outpost: port 1339; Windows Server: 80)
  --tag NAME    content tag: WinINet, WebIO, BITS-4.0, SMB or any text
`

// Result is the summary `offer` prints (as JSON with --json).
type Result struct {
	To            string  `json:"to"`
	Segments      int     `json:"segments"`
	Blocks        int     `json:"blocks"`
	Offers        int     `json:"offers"`
	Interested    int     `json:"interested"`
	BlocksPulled  int     `json:"blocks_pulled"`
	BytesUploaded int64   `json:"bytes_uploaded"`
	Seconds       float64 `json:"seconds"`
	MBps          float64 `json:"mb_per_s"`
}

// Run executes `outpost offer` with args and returns the exit code.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("outpost offer", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage) }
	to := fs.String("to", "", "hosted cache HOST:PORT")
	https := fs.Bool("https", false, "offer over HTTPS")
	insecure := fs.Bool("insecure", false, "with --https: accept any certificate")
	thumbprint := fs.String("thumbprint", "", "with --https: accept only the certificate with this SHA-1 thumbprint")
	version := fs.Int("version", 2, "PCHC version: 1 or 2")
	ciPath := fs.String("ci", "", "content information of the data")
	dataPath := fs.String("data", "", "the content")
	listen := fs.String("listen", ":0", "where to serve MS-PCCRR to the hosted cache")
	tag := fs.String("tag", "outpost", "content tag")
	timeout := fs.Duration("timeout", 2*time.Minute, "how long to wait for the hosted cache to pull everything")
	asJSON := fs.Bool("json", false, "print the summary as JSON")
	positional, err := cli.ParseFlags(fs, args)
	if err == nil {
		switch {
		case len(positional) != 0:
			err = cli.Usagef("unexpected arguments %q", positional)
		case *to == "" || *ciPath == "" || *dataPath == "":
			err = cli.Usagef("--to, --ci and --data are required")
		case *version != 1 && *version != 2:
			err = cli.Usagef("--version %d: want 1 or 2", *version)
		case (*insecure || *thumbprint != "") && !*https:
			err = cli.Usagef("--insecure and --thumbprint go with --https")
		case len(*tag) == 0 || len(*tag) > pchc.ContentTagSize:
			err = cli.Usagef("--tag must be 1 to 16 characters")
		}
	}
	if err != nil {
		return cli.ExitCode(err, "outpost offer", usage, stderr)
	}
	res, err := offer(ctx, options{
		to: *to, https: *https, insecure: *insecure, thumbprint: *thumbprint, version: uint8(*version),
		ciPath: *ciPath, dataPath: *dataPath, listen: *listen, tag: *tag, timeout: *timeout,
	})
	if err != nil {
		return cli.ExitCode(err, "outpost offer", usage, stderr)
	}
	if *asJSON {
		json.NewEncoder(stdout).Encode(res)
	} else {
		fmt.Fprintf(stdout, "offered %d segments (%d blocks) to %s: %d offers, %d answered INTERESTED; the hosted cache pulled %d blocks (%d bytes) and holds them all, in %.2fs (%.1f MB/s)\n",
			res.Segments, res.Blocks, res.To, res.Offers, res.Interested, res.BlocksPulled, res.BytesUploaded, res.Seconds, res.MBps)
	}
	return cli.ExitOK
}

type options struct {
	to, thumbprint, ciPath, dataPath, listen, tag string
	https, insecure                               bool
	version                                       uint8
	timeout                                       time.Duration
}

func offer(ctx context.Context, o options) (Result, error) {
	start := time.Now()
	raw, err := os.ReadFile(o.ciPath)
	if err != nil {
		return Result{}, err
	}
	ci, err := pccrc.Parse(raw)
	if err != nil {
		return Result{}, fmt.Errorf("%s: %w", o.ciPath, err)
	}
	if o.version == 1 && ci.Version != pccrc.V1 {
		return Result{}, cli.Usagef("PCHC v1.0 can only offer V1 content information (SEGMENT_INFO embeds V1); use --version 2")
	}
	data, err := os.Open(o.dataPath)
	if err != nil {
		return Result{}, err
	}
	defer data.Close()

	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return Result{}, fmt.Errorf("serving MS-PCCRR: %w", err)
	}
	pulls := &pullCounter{}
	srv := &http.Server{Handler: &retrieval.Server{Source: retrieval.NewContentSource(ci, data), Observer: pulls}, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()
	port := ln.Addr().(*net.TCPAddr).Port

	client := &hostedcache.OfferClient{Addr: o.to, HTTPS: o.https}
	peer := &retrieval.Client{HTTPS: o.https}
	if o.https {
		tlsConfig, err := hostedcache.PinnedTLS(o.thumbprint)
		if err != nil {
			return Result{}, cli.Usagef("%v", err)
		}
		if !o.insecure && o.thumbprint == "" {
			tlsConfig = nil // verify against the system roots
		}
		client.TLS = tlsConfig
		peer.HTTP = &http.Client{Transport: &http.Transport{TLSClientConfig: tlsConfig}}
	}
	res := Result{To: o.to, Segments: len(ci.Segments)}
	for _, seg := range ci.Segments {
		res.Blocks += max(1, len(seg.BlockHashes))
	}
	tag := pchc.MakeContentTag(o.tag)
	if o.tag == pchc.TagSMB {
		copy(tag[:], pchc.SMBContentTag)
	}
	if o.version == 1 {
		err = offerV1(ctx, client, ci, uint16(port), tag, &res)
	} else {
		err = offerV2(ctx, client, ci, uint16(port), tag, &res)
	}
	if err != nil {
		return Result{}, err
	}
	if err := waitHeld(ctx, peer, o.to, ci, o.timeout); err != nil {
		return Result{}, err
	}
	res.BlocksPulled, res.BytesUploaded = pulls.totals()
	res.Seconds = time.Since(start).Seconds()
	res.MBps = float64(res.BytesUploaded) / 1e6 / res.Seconds
	return res, nil
}

// offerV1 offers each segment as Windows 7 does: INITIAL_OFFER with the
// segment ID, and SEGMENT_INFO with its hashes if the cache is interested.
func offerV1(ctx context.Context, client *hostedcache.OfferClient, ci *pccrc.Info, port uint16, tag [pchc.ContentTagSize]byte, res *Result) error {
	rangeStart, _ := ci.Range()
	for i, seg := range ci.Segments {
		code, err := client.Send(ctx, pchc.InitialOffer{Major: pchc.MajorV1, Port: port, HoHoDk: ci.ID(i)})
		res.Offers++
		if err != nil {
			return err
		}
		if code != pchc.ResponseInterested {
			continue
		}
		res.Interested++
		// The segment's own content information: where the client's range
		// starts in it, and its whole size as the bytes read (protocols.md
		// §4.2).
		one := &pccrc.Info{Version: pccrc.V1, Algo: ci.Algo, ReadBytesInLastSegment: seg.Size, Segments: []pccrc.Segment{seg}}
		if rangeStart > seg.Offset {
			one.OffsetInFirstSegment = uint32(rangeStart - seg.Offset)
		}
		info, err := one.MarshalBinary()
		if err != nil {
			return err
		}
		code, err = client.Send(ctx, pchc.SegmentInfo{Major: pchc.MajorV1, Port: port, ContentTag: tag, SegmentInformation: info})
		res.Offers++
		if err != nil {
			return err
		}
		if code != pchc.ResponseOK {
			return fmt.Errorf("hosted cache answered SEGMENT_INFO for segment %d with %v", i, code)
		}
	}
	return nil
}

// offerV2 offers the segments in batches of up to 128, as Windows 8 does.
func offerV2(ctx context.Context, client *hostedcache.OfferClient, ci *pccrc.Info, port uint16, tag [pchc.ContentTagSize]byte, res *Result) error {
	algo, blockSize := uint8(pchc.HashSHA256), uint32(pccrc.BlockSize)
	if ci.Version == pccrc.V2 {
		algo = pchc.HashTruncatedSHA512
	}
	for first := 0; first < len(ci.Segments); first += pchc.MaxBatchedSegments {
		batch := pchc.BatchedOffer{Port: port}
		for i := first; i < min(first+pchc.MaxBatchedSegments, len(ci.Segments)); i++ {
			seg := ci.Segments[i]
			d := pchc.SegmentDescriptor{BlockSize: blockSize, SegmentSize: seg.Size, ContentTag: tag[:], HashAlgorithm: algo}
			if ci.Version == pccrc.V2 {
				d.BlockSize = seg.Size // the MS test suite's convention for V2
			}
			copy(d.HoHoDk[:], ci.ID(i))
			batch.Segments = append(batch.Segments, d)
		}
		code, err := client.Send(ctx, batch)
		res.Offers++
		if err != nil {
			return err
		}
		if code != pchc.ResponseOK {
			return fmt.Errorf("hosted cache answered BATCHED_OFFER with %v", code)
		}
	}
	return nil
}

// waitHeld polls the hosted cache with MS-PCCRR until it holds every
// block (V1: MSG_GETBLKLIST per segment; V2: MSG_GETSEGLIST), or the
// timeout passes. Asking the cache, rather than counting our uploads,
// also covers segments it already had.
func waitHeld(ctx context.Context, peer *retrieval.Client, addr string, ci *pccrc.Info, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		held, total, err := countHeld(ctx, peer, addr, ci)
		if err == nil && held == total {
			return nil
		}
		if time.Now().After(deadline) {
			if err != nil {
				return cli.FailedError{Err: fmt.Errorf("after %v the hosted cache could not be asked what it holds: %w", timeout, err)}
			}
			return cli.FailedError{Err: fmt.Errorf("after %v the hosted cache holds %d of %d blocks", timeout, held, total)}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func countHeld(ctx context.Context, peer *retrieval.Client, addr string, ci *pccrc.Info) (held, total int, err error) {
	if ci.Version == pccrc.V2 {
		total = len(ci.Segments)
		for first := 0; first < total; first += 256 {
			ids := make([][]byte, min(256, total-first))
			for i := range ids {
				ids[i] = ci.ID(first + i)
			}
			list, err := peer.GetSegmentList(ctx, addr, ids)
			if err != nil {
				return 0, total, err
			}
			for _, r := range list.Ranges {
				held += int(r.Count)
			}
		}
		return held, total, nil
	}
	for i, seg := range ci.Segments {
		n := uint32(len(seg.BlockHashes))
		total += int(n)
		list, err := peer.GetBlockList(ctx, addr, ci.ID(i), []pccrr.BlockRange{{Index: 0, Count: n}})
		if err != nil {
			return 0, total, err
		}
		for _, r := range list.Ranges {
			held += int(r.Count)
		}
	}
	return held, total, nil
}

// pullCounter counts the blocks the hosted cache fetched from us.
type pullCounter struct {
	mu     sync.Mutex
	blocks map[string]bool
	bytes  int64
}

func (p *pullCounter) Served(segmentID []byte, _ string, index uint32, n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.blocks == nil {
		p.blocks = map[string]bool{}
	}
	p.blocks[string(segmentID)+strconv.Itoa(int(index))] = true
	p.bytes += int64(n)
}

func (p *pullCounter) Missed([]byte, string, uint32) {}

func (p *pullCounter) totals() (blocks int, bytes int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.blocks), p.bytes
}
