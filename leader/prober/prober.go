// Package prober sends PeerDist discovery probes into a subnet, as a
// client does, and collects the ProbeMatches that come back: the leader
// re-multicasts forwarded probes with it (from UDP 3703), and `outpost
// probe` uses it to show an operator who holds what.
package prober

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/outpost-appliance/outpost/leader/mcast"
	"github.com/outpost-appliance/outpost/peerdist/pccrd"
)

// Match is a ProbeMatch received.
type Match struct {
	From    netip.AddrPort
	IfIndex int
	Match   *pccrd.ProbeMatch
}

// Options configure a Prober.
type Options struct {
	// Port to send from and receive on (0: an ephemeral port, as iPXE;
	// 3703 for a leader's re-multicast).
	Port int
	// Interfaces are the indexes of the interfaces to probe on.
	Interfaces []int
	// Loopback lets responders on this host hear the probes (off for a
	// leader, whose own responder must not answer its re-multicast).
	Loopback bool
	// NoIPv4 and NoIPv6 leave a family out.
	NoIPv4, NoIPv6 bool
}

// Prober is a pair of sockets (IPv4, IPv6) probing on a set of interfaces.
type Prober struct {
	opt   Options
	conns []*mcast.Conn

	mu     sync.Mutex
	ifaces []int
}

// Open opens the sockets. IPv6 is skipped when the host has none.
func Open(ctx context.Context, opt Options) (*Prober, error) {
	p := &Prober{opt: opt, ifaces: opt.Interfaces}
	mo := mcast.Options{Loopback: opt.Loopback, ReuseAddr: opt.Port != 0}
	if !opt.NoIPv4 {
		c4, err := mcast.Listen(ctx, "udp4", opt.Port, mo)
		if err != nil {
			return nil, fmt.Errorf("prober: %w", err)
		}
		p.conns = append(p.conns, c4)
	}
	if !opt.NoIPv6 {
		c6, err := mcast.Listen(ctx, "udp6", opt.Port, mo)
		switch {
		case err == nil:
			p.conns = append(p.conns, c6)
		case opt.NoIPv4:
			return nil, fmt.Errorf("prober: %w", err)
		}
	}
	if len(p.conns) == 0 {
		return nil, errors.New("prober: no address family")
	}
	return p, nil
}

// SetInterfaces replaces the interfaces probed on.
func (p *Prober) SetInterfaces(indexes []int) {
	p.mu.Lock()
	p.ifaces = indexes
	p.mu.Unlock()
}

// Send multicasts probe to 239.255.255.250 and ff02::c, port 3702, on
// every interface. It fails only if no copy could be sent: an interface
// without IPv6 addresses refuses IPv6, which is no reason to give up.
func (p *Prober) Send(probe *pccrd.Probe) error { return p.send(probe, true, true) }

// SendFamily sends probe over one address family only.
func (p *Prober) SendFamily(probe *pccrd.Probe, ipv6 bool) error { return p.send(probe, !ipv6, ipv6) }

func (p *Prober) send(probe *pccrd.Probe, v4, v6 bool) error {
	b, err := probe.Marshal()
	if err != nil {
		return fmt.Errorf("prober: %w", err)
	}
	p.mu.Lock()
	ifaces := p.ifaces
	p.mu.Unlock()
	var errs []error
	sent := 0
	for _, ifindex := range ifaces {
		for _, c := range p.conns {
			if c.IPv6() && !v6 || !c.IPv6() && !v4 {
				continue
			}
			group := mcast.GroupV4
			if c.IPv6() {
				group = mcast.GroupV6
			}
			if err := c.WriteTo(b, netip.AddrPortFrom(group, mcast.DiscoveryPort), netip.Addr{}, ifindex); err != nil {
				errs = append(errs, err)
				continue
			}
			sent++
		}
	}
	if sent == 0 {
		return fmt.Errorf("prober: no probe sent: %w", errors.Join(append(errs, errors.New("no socket of that family"))...))
	}
	return nil
}

// Receive calls fn for every PeerDist ProbeMatch that arrives until ctx
// ends; other datagrams are ignored. fn may be called from several
// goroutines at once.
func (p *Prober) Receive(ctx context.Context, fn func(Match)) error {
	var wg sync.WaitGroup
	errs := make(chan error, len(p.conns))
	for _, c := range p.conns {
		wg.Go(func() {
			buf := make([]byte, pccrd.MaxDatagramSize)
			for ctx.Err() == nil {
				// A short deadline lets the loop see ctx end without
				// closing the socket, which others share.
				c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
				n, meta, err := c.ReadFrom(buf)
				if errors.Is(err, os.ErrDeadlineExceeded) {
					continue
				}
				if err != nil {
					errs <- err
					return
				}
				m, err := pccrd.ParseProbeMatch(buf[:n])
				if err != nil {
					continue
				}
				fn(Match{From: meta.Src, IfIndex: meta.IfIndex, Match: m})
			}
		})
	}
	wg.Wait()
	select {
	case err := <-errs:
		return fmt.Errorf("prober: %w", err)
	default:
		return nil
	}
}

// Close closes the sockets.
func (p *Prober) Close() error {
	var errs []error
	for _, c := range p.conns {
		errs = append(errs, c.Close())
	}
	return errors.Join(errs...)
}
