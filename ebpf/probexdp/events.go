package probexdp

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"unsafe"

	"github.com/cilium/ebpf/ringbuf"

	"github.com/outpost-appliance/outpost/peerdist/pccrd"
)

// Probe is a PeerDist V1 probe the program captured: what the leader
// needs to answer it as if it had read and parsed the datagram.
type Probe struct {
	// Src is the client's address and port (a link-local IPv6 source
	// carries the interface as its zone, as a socket reports it).
	Src     netip.AddrPort
	IfIndex int
	// MessageID is the probe's wsa:MessageID text.
	MessageID string
	// SegmentIDs in probe order; Upper[i] says token i was written in
	// upper case (the reply echoes the client's spelling).
	SegmentIDs [][]byte
	Upper      []bool
	// Held and Peer have bit i set when SegmentIDs[i] was in the held or
	// the peer map.
	Held, Peer uint8
}

// PCCRD returns the probe as the Go decoder would have returned it from
// the datagram (pccrd.ParseProbe): V1, with the tokens in the client's
// letter case.
func (p Probe) PCCRD() *pccrd.Probe {
	out := &pccrd.Probe{MessageID: p.MessageID, Version: pccrd.V1, SegmentIDs: p.SegmentIDs}
	for i, id := range p.SegmentIDs {
		t := hex.EncodeToString(id)
		if p.Upper[i] {
			t = strings.ToUpper(t)
		}
		out.Tokens = append(out.Tokens, t)
	}
	return out
}

var errShortEvent = errors.New("probexdp: short ring buffer record")

// decodeEvent turns a ring buffer record (struct event) into a Probe.
func decodeEvent(raw []byte, zone func(int) string) (Probe, error) {
	var e xdpEvent
	if len(raw) < int(unsafe.Sizeof(e)) {
		return Probe{}, errShortEvent
	}
	if _, err := binary.Decode(raw, binary.NativeEndian, &e); err != nil {
		return Probe{}, fmt.Errorf("probexdp: event: %w", err)
	}
	if e.Count < 1 || int(e.Count) > MaxSegmentIDs || e.MsgidLen < 1 || int(e.MsgidLen) > len(e.Msgid) {
		return Probe{}, fmt.Errorf("probexdp: event with %d IDs and a %d-byte message ID", e.Count, e.MsgidLen)
	}
	addr := netip.AddrFrom16(e.Addr).Unmap()
	if addr.Is6() && addr.IsLinkLocalUnicast() && zone != nil {
		addr = addr.WithZone(zone(int(e.Ifindex)))
	}
	msgid := make([]byte, e.MsgidLen)
	for i := range msgid {
		msgid[i] = byte(e.Msgid[i])
	}
	p := Probe{
		Src: netip.AddrPortFrom(addr, e.Port), IfIndex: int(e.Ifindex), MessageID: string(msgid),
		Held: e.Held, Peer: e.Peer,
		SegmentIDs: make([][]byte, e.Count), Upper: make([]bool, e.Count),
	}
	ids := make([]byte, int(e.Count)*SegmentIDSize)
	for i := range p.SegmentIDs {
		p.SegmentIDs[i] = ids[i*SegmentIDSize : (i+1)*SegmentIDSize : (i+1)*SegmentIDSize]
		copy(p.SegmentIDs[i], e.Ids[i][:])
		p.Upper[i] = e.Upper&(1<<i) != 0
	}
	return p, nil
}

// interfaceName is the zone of a link-local source: the interface's name,
// as the socket path reports it.
func interfaceName(index int) string {
	if ifi, err := net.InterfaceByIndex(index); err == nil {
		return ifi.Name
	}
	return ""
}

// ReadProbes calls fn for every probe the program captures until ctx ends
// (then it returns nil). fn runs on the reading goroutine: it must not
// block for long, or the ring fills and probes fall back to the socket
// path.
func (p *Program) ReadProbes(ctx context.Context, fn func(Probe)) error {
	rd, err := ringbuf.NewReader(p.objs.Events)
	if err != nil {
		return fmt.Errorf("probexdp: ring buffer: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { rd.Close() })
	defer stop()
	defer rd.Close()
	var rec ringbuf.Record
	for {
		if err := rd.ReadInto(&rec); err != nil {
			if ctx.Err() != nil || errors.Is(err, os.ErrClosed) || errors.Is(err, ringbuf.ErrClosed) {
				return nil
			}
			return fmt.Errorf("probexdp: ring buffer: %w", err)
		}
		pr, err := decodeEvent(rec.RawSample, interfaceName)
		if err != nil {
			continue // cannot happen with the program's own records
		}
		fn(pr)
	}
}
