// Package getcmd implements `outpost get`: fetch content from a BranchCache
// peer or hosted cache (Outpost or Windows) with MS-PCCRR, as a client
// would, decrypting and verifying every block against the content
// information. Admins use it to prove a cache holds what it should.
package getcmd

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/outpost-appliance/outpost/cache/retrieval"
	"github.com/outpost-appliance/outpost/firmware/cli"
	"github.com/outpost-appliance/outpost/peerdist/pccrc"
)

const usage = `usage: outpost get --from HOST:PORT --ci FILE.ci -o OUT [--v2-seglist] [--parallel N] [--timeout D] [--json]

Retrieves the content described by FILE.ci from a peer or hosted cache over
MS-PCCRR, decrypts and verifies every block, and writes the content range
to OUT. Exits 1 naming the first segment/block that could not be fetched or
verified, and why.

  --v2-seglist  first ask which segments are held (MSG_GETSEGLIST), as a
                Windows 8+ hosted-cache client does for V2 content
`

// Result is the summary `get` prints (as JSON with --json).
type Result struct {
	From    string  `json:"from"`
	Output  string  `json:"output"`
	Bytes   uint64  `json:"bytes"`
	Blocks  int     `json:"blocks"`
	Seconds float64 `json:"seconds"`
	MBps    float64 `json:"mb_per_s"`
}

// BlockError names the block that could not be fetched or verified.
type BlockError struct {
	Segment   int // index in the content information
	SegmentID []byte
	Block     uint32
	Err       error
}

func (e *BlockError) Error() string {
	return fmt.Sprintf("segment %d (%x) block %d: %v", e.Segment, e.SegmentID, e.Block, e.Err)
}

func (e *BlockError) Unwrap() error { return e.Err }

// Run executes `outpost get` with args and returns the exit code.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("outpost get", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage) }
	from := fs.String("from", "", "peer or hosted cache, HOST:PORT")
	ciPath := fs.String("ci", "", "content information file")
	output := fs.String("o", "", "output file")
	segList := fs.Bool("v2-seglist", false, "ask which segments are held first (V2)")
	parallel := fs.Int("parallel", 8, "blocks fetched at once")
	timeout := fs.Duration("timeout", retrieval.DefaultRequestTimeout, "per-request timeout")
	asJSON := fs.Bool("json", false, "print the summary as JSON")
	positional, err := cli.ParseFlags(fs, args)
	if err == nil {
		switch {
		case len(positional) != 0:
			err = cli.Usagef("unexpected arguments %q", positional)
		case *from == "" || *ciPath == "" || *output == "":
			err = cli.Usagef("--from, --ci and -o are required")
		case *parallel < 1:
			err = cli.Usagef("--parallel must be at least 1")
		}
	}
	if err != nil {
		return cli.ExitCode(err, "outpost get", usage, stderr)
	}
	raw, err := os.ReadFile(*ciPath)
	if err != nil {
		return cli.ExitCode(err, "outpost get", usage, stderr)
	}
	ci, err := pccrc.Parse(raw)
	if err != nil {
		return cli.ExitCode(fmt.Errorf("%s: %w", *ciPath, err), "outpost get", usage, stderr)
	}
	fetcher := Fetcher{Client: &retrieval.Client{Timeout: *timeout}, Parallel: *parallel, SegmentList: *segList}
	res, err := fetcher.Fetch(ctx, *from, ci, *output)
	var be *BlockError
	if errors.As(err, &be) {
		err = cli.FailedError{Err: err}
	}
	if err != nil {
		return cli.ExitCode(err, "outpost get", usage, stderr)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.Encode(res)
	} else {
		fmt.Fprintf(stdout, "got %d bytes (%d blocks) from %s in %.2fs (%.1f MB/s), verified, written to %s\n",
			res.Bytes, res.Blocks, res.From, res.Seconds, res.MBps, res.Output)
	}
	return cli.ExitOK
}

// Fetcher retrieves and verifies the content of a piece of content
// information.
type Fetcher struct {
	Client      *retrieval.Client
	Parallel    int
	SegmentList bool
}

type job struct {
	segment int
	block   uint32
}

// Fetch retrieves every block the content information lists from addr,
// verifies it and writes the content range to path (atomically).
func (f *Fetcher) Fetch(ctx context.Context, addr string, ci *pccrc.Info, path string) (Result, error) {
	start := time.Now()
	rangeStart, rangeEnd := ci.Range()
	if f.SegmentList {
		if err := f.checkSegmentList(ctx, addr, ci); err != nil {
			return Result{}, err
		}
	}
	out, err := cli.CreateAtomic(path)
	if err != nil {
		return Result{}, err
	}
	defer out.Abort()
	if err := out.Truncate(int64(rangeEnd - rangeStart)); err != nil {
		return Result{}, err
	}

	var jobs []job
	for i, seg := range ci.Segments {
		if ci.Version == pccrc.V2 {
			jobs = append(jobs, job{segment: i})
			continue
		}
		for b := range seg.BlockHashes {
			jobs = append(jobs, job{segment: i, block: uint32(b)})
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	queue := make(chan job)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	fail := func(err error) {
		mu.Lock()
		if firstErr == nil {
			firstErr = err
			cancel()
		}
		mu.Unlock()
	}
	for range max(1, f.Parallel) {
		wg.Go(func() {
			for j := range queue {
				if err := f.fetchBlock(ctx, addr, ci, j, out.File, rangeStart, rangeEnd); err != nil {
					fail(err)
				}
			}
		})
	}
feed:
	for _, j := range jobs {
		select {
		case queue <- j:
		case <-ctx.Done():
			break feed
		}
	}
	close(queue)
	wg.Wait()
	if firstErr != nil {
		return Result{}, firstErr
	}
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}
	if err := out.Commit(); err != nil {
		return Result{}, err
	}
	elapsed := time.Since(start).Seconds()
	n := rangeEnd - rangeStart
	return Result{From: addr, Output: path, Bytes: n, Blocks: len(jobs), Seconds: elapsed, MBps: float64(n) / 1e6 / elapsed}, nil
}

func (f *Fetcher) fetchBlock(ctx context.Context, addr string, ci *pccrc.Info, j job, out io.WriterAt, rangeStart, rangeEnd uint64) error {
	seg := &ci.Segments[j.segment]
	blockErr := func(err error) error {
		return &BlockError{Segment: j.segment, SegmentID: ci.ID(j.segment), Block: j.block, Err: err}
	}
	blk, err := f.Client.GetBlock(ctx, addr, ci.ID(j.segment), j.block)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return blockErr(err)
	}
	plain, err := retrieval.Plaintext(ci.Algo, seg, j.block, blk)
	if err != nil {
		return blockErr(err)
	}
	// Write the part of the block inside the content range.
	offset := seg.Offset
	if ci.Version == pccrc.V1 {
		off, _ := pccrc.BlockSpan(seg.Size, int(j.block))
		offset += uint64(off)
	}
	lo, hi := max(offset, rangeStart), min(offset+uint64(len(plain)), rangeEnd)
	if lo >= hi {
		return nil
	}
	if _, err := out.WriteAt(plain[lo-offset:hi-offset], int64(lo-rangeStart)); err != nil {
		return fmt.Errorf("writing the output: %w", err)
	}
	return nil
}

// checkSegmentList asks which segments addr holds and fails naming the
// first one it lacks, before fetching anything.
func (f *Fetcher) checkSegmentList(ctx context.Context, addr string, ci *pccrc.Info) error {
	for first := 0; first < len(ci.Segments); first += 256 {
		n := min(256, len(ci.Segments)-first)
		ids := make([][]byte, n)
		for i := range ids {
			ids[i] = ci.ID(first + i)
		}
		list, err := f.Client.GetSegmentList(ctx, addr, ids)
		if err != nil {
			return err
		}
		held := make([]bool, n)
		for _, r := range list.Ranges {
			for i := r.Index; i < r.Index+r.Count && int(i) < n; i++ {
				held[i] = true
			}
		}
		for i, ok := range held {
			if !ok {
				return &BlockError{Segment: first + i, SegmentID: ids[i], Err: fmt.Errorf("not held (MSG_SEGLIST): %w", retrieval.ErrNotFound)}
			}
		}
	}
	return nil
}
