package hostedcache

import (
	"context"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/outpost-appliance/outpost/cache/retrieval"
	"github.com/outpost-appliance/outpost/peerdist/pccrr"
)

// Sink is where pulled blocks go: the segment store, which verifies what it
// can and stores the rest for replay.
type Sink interface {
	// Missing lists the blocks of a segment still to fetch, in order.
	Missing(ctx context.Context, segmentID []byte) ([]uint32, error)
	// Put stores a pulled block, or rejects it with an error saying why
	// (a hash mismatch, a block of the wrong shape); nothing of a rejected
	// block is kept.
	Put(ctx context.Context, segmentID []byte, index uint32, blk *pccrr.Blk) error
}

// PullObserver is told how pulls end, for statistics and events. Its
// methods must not block.
type PullObserver interface {
	Pulled(segmentID []byte, tag string, blocks, bytes int)
	PullFailed(segmentID []byte, tag string, peer netip.AddrPort, err error)
}

// Pull defaults.
const (
	DefaultMaxPulls       = 16 // segments pulled at once
	DefaultMaxPullsInPeer = 4  // of them from one client
	DefaultPullQueue      = 4096
	DefaultAttempts       = 3
	DefaultBackoff        = 500 * time.Millisecond
)

// Puller fetches offered segments from the clients that offered them, with
// MS-PCCRR, as a Windows hosted cache does: one MSG_GETBLKS per block (V1)
// or per segment (V2), no NEGO or GETBLKLIST first (protocols.md §4.3).
// A segment offered by several clients at once is pulled once; the other
// clients are kept as fallbacks.
type Puller struct {
	Client   *retrieval.Client
	Sink     Sink
	Observer PullObserver
	Logger   *slog.Logger
	// MaxPulls bounds the segments pulled at once, MaxPullsPerPeer those
	// from one client (a Windows client's own upload limit is 64).
	MaxPulls, MaxPullsPerPeer int
	// QueueSize bounds waiting pulls; offers beyond it are dropped (the
	// client offers again on its next download).
	QueueSize int
	// Attempts per block and peer, with exponential backoff from Backoff.
	Attempts int
	Backoff  time.Duration

	once    sync.Once
	queue   chan *pull
	mu      sync.Mutex
	pending map[string]*pull       // by segment ID, queued or running
	peers   map[netip.AddrPort]int // running pulls per peer
	wake    chan struct{}          // a peer slot was freed
}

type pull struct {
	segmentID []byte
	tag       string
	peers     []netip.AddrPort // offering clients, first offer first
}

func (p *Puller) init() {
	p.once.Do(func() {
		size := p.QueueSize
		if size <= 0 {
			size = DefaultPullQueue
		}
		p.queue = make(chan *pull, size)
		p.pending = map[string]*pull{}
		p.peers = map[netip.AddrPort]int{}
		p.wake = make(chan struct{}, 1)
	})
}

func (p *Puller) logger() *slog.Logger {
	if p.Logger == nil {
		return slog.Default()
	}
	return p.Logger
}

// Enqueue asks for a segment to be pulled from peer. It never blocks: the
// PCHC answer must not wait for pulling. It reports false if the queue is
// full.
func (p *Puller) Enqueue(peer netip.AddrPort, segmentID []byte, tag string) bool {
	p.init()
	p.mu.Lock()
	defer p.mu.Unlock()
	key := string(segmentID)
	if job, ok := p.pending[key]; ok {
		for _, known := range job.peers {
			if known == peer {
				return true
			}
		}
		job.peers = append(job.peers, peer)
		return true
	}
	job := &pull{segmentID: append([]byte(nil), segmentID...), tag: tag, peers: []netip.AddrPort{peer}}
	select {
	case p.queue <- job:
		p.pending[key] = job
		return true
	default:
		p.logger().Warn("pull queue full, offer dropped", "segment", hex.EncodeToString(segmentID), "peer", peer)
		return false
	}
}

// Run pulls until ctx ends.
func (p *Puller) Run(ctx context.Context) error {
	p.init()
	workers := p.MaxPulls
	if workers <= 0 {
		workers = DefaultMaxPulls
	}
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case job := <-p.queue:
					p.run(ctx, job)
				}
			}
		})
	}
	wg.Wait()
	return ctx.Err()
}

// run pulls one segment, trying its offering peers in turn.
func (p *Puller) run(ctx context.Context, job *pull) {
	defer func() {
		p.mu.Lock()
		delete(p.pending, string(job.segmentID))
		p.mu.Unlock()
	}()
	for i := 0; ; i++ {
		p.mu.Lock()
		if i >= len(job.peers) {
			p.mu.Unlock()
			return
		}
		peer := job.peers[i]
		p.mu.Unlock()
		if !p.acquire(ctx, peer) {
			return
		}
		blocks, bytes, err := p.pullFrom(ctx, peer, job.segmentID)
		p.release(peer)
		if err == nil {
			if p.Observer != nil && blocks > 0 {
				p.Observer.Pulled(job.segmentID, job.tag, blocks, bytes)
			}
			return
		}
		if ctx.Err() != nil {
			return
		}
		p.logger().Info("pull failed", "segment", hex.EncodeToString(job.segmentID), "peer", peer, "err", err)
		if p.Observer != nil {
			p.Observer.PullFailed(job.segmentID, job.tag, peer, err)
		}
	}
}

// pullFrom fetches every missing block of a segment from one peer.
func (p *Puller) pullFrom(ctx context.Context, peer netip.AddrPort, segmentID []byte) (blocks, bytes int, err error) {
	missing, err := p.Sink.Missing(ctx, segmentID)
	if err != nil {
		return 0, 0, err
	}
	addr := peer.String()
	for _, index := range missing {
		blk, err := p.fetch(ctx, addr, segmentID, index)
		if err != nil {
			return blocks, bytes, err
		}
		if err := p.Sink.Put(ctx, segmentID, index, blk); err != nil {
			// A block that fails verification comes from a client that
			// holds corrupt data: nothing more is taken from it.
			return blocks, bytes, err
		}
		blocks++
		bytes += len(blk.Block)
	}
	return blocks, bytes, nil
}

// fetch requests one block, retrying transport failures with backoff.
// "Not held" and unusable answers are not retried: the peer said no.
func (p *Puller) fetch(ctx context.Context, addr string, segmentID []byte, index uint32) (*pccrr.Blk, error) {
	attempts := p.Attempts
	if attempts <= 0 {
		attempts = DefaultAttempts
	}
	backoff := p.Backoff
	if backoff <= 0 {
		backoff = DefaultBackoff
	}
	var pe *retrieval.PeerError
	for attempt := 1; ; attempt++ {
		blk, err := p.Client.GetBlock(ctx, addr, segmentID, index)
		if err == nil || attempt == attempts || errors.Is(err, retrieval.ErrNotFound) || errors.As(err, &pe) || ctx.Err() != nil {
			return blk, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(backoff << (attempt - 1)):
		}
	}
}

// acquire waits for a pull slot for peer.
func (p *Puller) acquire(ctx context.Context, peer netip.AddrPort) bool {
	limit := p.MaxPullsPerPeer
	if limit <= 0 {
		limit = DefaultMaxPullsInPeer
	}
	for {
		p.mu.Lock()
		if p.peers[peer] < limit {
			p.peers[peer]++
			p.mu.Unlock()
			return true
		}
		p.mu.Unlock()
		select {
		case <-ctx.Done():
			return false
		case <-p.wake:
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (p *Puller) release(peer netip.AddrPort) {
	p.mu.Lock()
	if p.peers[peer]--; p.peers[peer] <= 0 {
		delete(p.peers, peer)
	}
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}
