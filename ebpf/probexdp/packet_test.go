package probexdp

import (
	"encoding/binary"
	"net/netip"
)

// frame describes a test packet: Ethernet, an optional 802.1Q tag, IPv4
// or IPv6, UDP, payload.
type frame struct {
	src     netip.AddrPort // IPv4 or IPv6 (decides the family)
	dst     netip.Addr     // zero: the discovery group of the family
	dport   uint16         // zero: 3702
	vlan    uint16         // non-zero: tagged with this VLAN ID
	payload []byte

	proto      uint8 // zero: UDP (17)
	badSum     bool  // a wrong UDP checksum
	noSum      bool  // checksum 0 (IPv4: none)
	fragment   bool  // IPv4 MF flag / IPv6 fragment header
	udpLenPlus int   // added to the UDP length field (lengths that disagree)
	trim       int   // bytes cut off the end of the frame (truncation)
	pad        int   // bytes added after the datagram (Ethernet padding)
}

var (
	groupV4 = netip.MustParseAddr("239.255.255.250")
	groupV6 = netip.MustParseAddr("ff02::c")
	client4 = netip.MustParseAddrPort("10.61.0.7:49152")
	client6 = netip.MustParseAddrPort("[fe80::7]:49152")
)

// bytes builds the frame with correct lengths and checksums unless told
// otherwise.
func (f frame) bytes() []byte {
	v6 := f.src.Addr().Is6()
	dst := f.dst
	if !dst.IsValid() {
		dst = groupV4
		if v6 {
			dst = groupV6
		}
	}
	dport := f.dport
	if dport == 0 {
		dport = 3702
	}
	proto := f.proto
	if proto == 0 {
		proto = 17
	}
	b := []byte{0x01, 0x00, 0x5e, 0x7f, 0xff, 0xfa, 0x02, 0, 0, 0, 0, 1}
	if f.vlan != 0 {
		b = binary.BigEndian.AppendUint16(b, 0x8100)
		b = binary.BigEndian.AppendUint16(b, f.vlan)
	}
	udp := make([]byte, 8, 8+len(f.payload))
	binary.BigEndian.PutUint16(udp[0:], f.src.Port())
	binary.BigEndian.PutUint16(udp[2:], dport)
	binary.BigEndian.PutUint16(udp[4:], uint16(8+len(f.payload)+f.udpLenPlus))
	udp = append(udp, f.payload...)
	var pseudo []byte
	if v6 {
		b = binary.BigEndian.AppendUint16(b, 0x86dd)
		next := proto
		if f.fragment {
			next = 44
		}
		ip := make([]byte, 40)
		ip[0] = 0x60
		plen := len(udp)
		if f.fragment {
			plen += 8
		}
		binary.BigEndian.PutUint16(ip[4:], uint16(plen))
		ip[6], ip[7] = next, 1
		s, d := f.src.Addr().As16(), dst.As16()
		copy(ip[8:], s[:])
		copy(ip[24:], d[:])
		b = append(b, ip...)
		if f.fragment {
			b = append(b, proto, 0, 0, 1, 0, 0, 0, 42) // offset 0, M=1
		}
		pseudo = append(append(append(pseudo, s[:]...), d[:]...), 0, 0)
		pseudo = binary.BigEndian.AppendUint16(pseudo, uint16(len(udp)))
		pseudo = append(pseudo, 0, 0, 0, 17)
	} else {
		b = binary.BigEndian.AppendUint16(b, 0x0800)
		ip := make([]byte, 20)
		ip[0] = 0x45
		binary.BigEndian.PutUint16(ip[2:], uint16(20+len(udp)))
		if f.fragment {
			ip[6] = 0x20 // MF
		}
		ip[8], ip[9] = 1, proto
		s, d := f.src.Addr().As4(), dst.As4()
		copy(ip[12:], s[:])
		copy(ip[16:], d[:])
		binary.BigEndian.PutUint16(ip[10:], ^onesSum(0, ip))
		b = append(b, ip...)
		pseudo = append(append(pseudo, s[:]...), d[:]...)
		pseudo = append(pseudo, 0, 17)
		pseudo = binary.BigEndian.AppendUint16(pseudo, uint16(len(udp)))
	}
	sum := ^onesSum(onesSum(0, pseudo), udp)
	if sum == 0 {
		sum = 0xffff
	}
	switch {
	case f.noSum:
		sum = 0
	case f.badSum:
		sum ^= 0x0100
	}
	binary.BigEndian.PutUint16(udp[6:], sum)
	b = append(b, udp...)
	b = append(b, make([]byte, f.pad)...)
	return b[:len(b)-f.trim]
}

// onesSum adds b to a ones' complement sum of 16-bit big-endian words.
func onesSum(sum uint16, b []byte) uint16 {
	s := uint32(sum)
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s > 0xffff {
		s = s&0xffff + s>>16
	}
	return uint16(s)
}

func netip4(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }
