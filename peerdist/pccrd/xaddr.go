package pccrd

import (
	"fmt"
	"net/netip"
	"strings"
)

// defaultXAddrPort is the port a bare address means: iPXE builds
// http://<XAddrs>/… from the text as is, so no port means HTTP's 80.
const defaultXAddrPort = 80

// XAddr formats the MS-PCCRR endpoint of a ProbeMatch: "ip:port" without
// scheme or path, as Windows sends it and iPXE requires (docs/protocols.md
// §5.3, §10). IPv6 is written "[addr]:port" (no published example; §8 item
// 4); an IPv4-mapped IPv6 address is written as plain IPv4 so IPv4 clients
// can use it.
func XAddr(ap netip.AddrPort) string {
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()).String()
}

// ParseXAddr parses one XAddrs entry: "ip:port", "[ipv6]:port", or a bare
// address meaning port 80. Host names, schemes and paths are refused: a
// responder must advertise an address on the prober's subnet.
func ParseXAddr(s string) (netip.AddrPort, error) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		if ap.Port() == 0 {
			return netip.AddrPort{}, fmt.Errorf("XAddr %q has port 0", s)
		}
		return ap, nil
	}
	host := s
	if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		host = host[1 : len(host)-1]
		if !strings.Contains(host, ":") {
			return netip.AddrPort{}, fmt.Errorf("XAddr %q brackets an IPv4 address", s)
		}
	} else if strings.Contains(host, ":") {
		return netip.AddrPort{}, fmt.Errorf("XAddr %q is not ip:port", s)
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("XAddr %q is not ip:port", s)
	}
	return netip.AddrPortFrom(addr, defaultXAddrPort), nil
}
