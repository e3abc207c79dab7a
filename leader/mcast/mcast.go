// Package mcast is the UDP socket the leader speaks WS-Discovery over: one
// address family, joined to multicast groups per interface, telling for
// every datagram the interface it arrived on and the address it was sent
// to (IP_PKTINFO, IPV6_RECVPKTINFO), and sending with a chosen source
// address and interface, so that a reply leaves from the subnet the probe
// came from.
package mcast

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The WS-Discovery groups (protocols.md §5.1).
var (
	GroupV4 = netip.MustParseAddr("239.255.255.250")
	GroupV6 = netip.MustParseAddr("ff02::c")
)

// DiscoveryPort is the WS-Discovery port.
const DiscoveryPort = 3702

// Meta describes a received datagram.
type Meta struct {
	Src     netip.AddrPort // sender
	Dst     netip.Addr     // destination address (a group, or ours)
	IfIndex int            // interface it arrived on
}

// Options tune a Conn.
type Options struct {
	// ReuseAddr lets other sockets bind the same port (several tools on
	// one box listening to 3702).
	ReuseAddr bool
	// Loopback delivers our own multicasts to local sockets; off for a
	// leader's re-multicast, which its own responder must not hear.
	Loopback bool
	// ReadBuffer is SO_RCVBUF in bytes (0: the system default); a probe
	// flood must not crowd out other clients' probes in the kernel queue.
	ReadBuffer int
}

// Conn is a UDP socket of one family ("udp4" or "udp6").
type Conn struct {
	c  *net.UDPConn
	v6 bool
}

// Listen opens a socket on port (0: any) of network "udp4" or "udp6".
func Listen(ctx context.Context, network string, port int, opt Options) (*Conn, error) {
	v6 := network == "udp6"
	if !v6 && network != "udp4" {
		return nil, fmt.Errorf("mcast: network %q: expected udp4 or udp6", network)
	}
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = setup(int(fd), v6, opt)
		})
		return errors.Join(err, serr)
	}}
	host := "0.0.0.0"
	if v6 {
		host = "::"
	}
	pc, err := lc.ListenPacket(ctx, network, net.JoinHostPort(host, fmt.Sprint(port)))
	if err != nil {
		return nil, fmt.Errorf("mcast: listen %s port %d: %w", network, port, err)
	}
	return &Conn{c: pc.(*net.UDPConn), v6: v6}, nil
}

func setup(fd int, v6 bool, opt Options) error {
	var errs []error
	set := func(level, name, v int) {
		if err := unix.SetsockoptInt(fd, level, name, v); err != nil {
			errs = append(errs, fmt.Errorf("setsockopt %d/%d: %w", level, name, err))
		}
	}
	if opt.ReuseAddr {
		set(unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
	}
	if opt.ReadBuffer > 0 {
		set(unix.SOL_SOCKET, unix.SO_RCVBUF, opt.ReadBuffer)
	}
	loop := 0
	if opt.Loopback {
		loop = 1
	}
	if v6 {
		set(unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO, 1)
		set(unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_HOPS, 1)
		set(unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_LOOP, loop)
	} else {
		set(unix.IPPROTO_IP, unix.IP_PKTINFO, 1)
		set(unix.IPPROTO_IP, unix.IP_MULTICAST_TTL, 1)
		set(unix.IPPROTO_IP, unix.IP_MULTICAST_LOOP, loop)
		// Receive only the groups joined on this socket, not every group
		// any socket of the host joined.
		set(unix.IPPROTO_IP, unix.IP_MULTICAST_ALL, 0)
	}
	return errors.Join(errs...)
}

// IPv6 reports the socket's family.
func (c *Conn) IPv6() bool { return c.v6 }

// LocalAddr is the bound address.
func (c *Conn) LocalAddr() netip.AddrPort { return c.c.LocalAddr().(*net.UDPAddr).AddrPort() }

// Join joins group on the interface ifindex. Joining twice is not an
// error.
func (c *Conn) Join(ifindex int, group netip.Addr) error {
	return c.membership(ifindex, group, true)
}

// Leave leaves group on the interface.
func (c *Conn) Leave(ifindex int, group netip.Addr) error {
	return c.membership(ifindex, group, false)
}

func (c *Conn) membership(ifindex int, group netip.Addr, join bool) error {
	rc, err := c.c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	err = rc.Control(func(fd uintptr) {
		if c.v6 {
			opt := unix.IPV6_JOIN_GROUP
			if !join {
				opt = unix.IPV6_LEAVE_GROUP
			}
			serr = unix.SetsockoptIPv6Mreq(int(fd), unix.IPPROTO_IPV6, opt,
				&unix.IPv6Mreq{Multiaddr: group.As16(), Interface: uint32(ifindex)})
		} else {
			opt := unix.IP_ADD_MEMBERSHIP
			if !join {
				opt = unix.IP_DROP_MEMBERSHIP
			}
			serr = unix.SetsockoptIPMreqn(int(fd), unix.IPPROTO_IP, opt,
				&unix.IPMreqn{Multiaddr: group.As4(), Ifindex: int32(ifindex)})
		}
	})
	if err == nil {
		err = serr
	}
	if join && errors.Is(err, unix.EADDRINUSE) {
		return nil // already a member
	}
	if err != nil {
		return fmt.Errorf("mcast: join=%v %s on interface %d: %w", join, group, ifindex, err)
	}
	return nil
}

// ReadFrom reads a datagram into b.
func (c *Conn) ReadFrom(b []byte) (int, Meta, error) {
	var oob [128]byte
	n, oobn, _, src, err := c.c.ReadMsgUDPAddrPort(b, oob[:])
	if err != nil {
		return 0, Meta{}, err
	}
	m := Meta{Src: netip.AddrPortFrom(src.Addr().Unmap(), src.Port())}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil {
		return n, m, nil
	}
	for _, msg := range msgs {
		switch {
		case msg.Header.Level == unix.IPPROTO_IP && msg.Header.Type == unix.IP_PKTINFO && len(msg.Data) >= unix.SizeofInet4Pktinfo:
			// struct in_pktinfo: ifindex, spec_dst, addr (the header's
			// destination).
			m.IfIndex = int(int32(binary.NativeEndian.Uint32(msg.Data[0:4])))
			m.Dst = netip.AddrFrom4([4]byte(msg.Data[8:12]))
		case msg.Header.Level == unix.IPPROTO_IPV6 && msg.Header.Type == unix.IPV6_PKTINFO && len(msg.Data) >= unix.SizeofInet6Pktinfo:
			// struct in6_pktinfo: addr, ifindex.
			m.Dst = netip.AddrFrom16([16]byte(msg.Data[0:16]))
			m.IfIndex = int(binary.NativeEndian.Uint32(msg.Data[16:20]))
		}
	}
	return n, m, nil
}

// WriteTo sends b to dst through interface ifindex (0: the routing table
// decides) from source address src (invalid: the kernel chooses).
func (c *Conn) WriteTo(b []byte, dst netip.AddrPort, src netip.Addr, ifindex int) error {
	var oob []byte
	if c.v6 {
		pi := unix.Inet6Pktinfo{Ifindex: uint32(ifindex)}
		if src.IsValid() {
			pi.Addr = src.As16()
		}
		oob = unix.PktInfo6(&pi)
		dst = netip.AddrPortFrom(netip.AddrFrom16(dst.Addr().As16()), dst.Port())
	} else {
		pi := unix.Inet4Pktinfo{Ifindex: int32(ifindex)}
		if src.IsValid() {
			pi.Spec_dst = src.Unmap().As4()
		}
		oob = unix.PktInfo4(&pi)
		dst = netip.AddrPortFrom(dst.Addr().Unmap(), dst.Port())
	}
	if _, _, err := c.c.WriteMsgUDPAddrPort(b, oob, dst); err != nil {
		return fmt.Errorf("mcast: send to %s: %w", dst, err)
	}
	return nil
}

// SetReadDeadline bounds the next reads.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.c.SetReadDeadline(t) }

// Close closes the socket.
func (c *Conn) Close() error { return c.c.Close() }
