package service_test

import (
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/outpost-appliance/outpost/ebpf/probexdp"
)

// txChecksumOff turns a link's transmit checksum offload off (run inside
// its namespace): a veth otherwise hands packets over with a partial UDP
// checksum, which the XDP fast path cannot verify and passes to the
// socket path (correct, but then the fast path is not what is tested).
func txChecksumOff(name string) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	value := struct{ cmd, data uint32 }{cmd: unix.ETHTOOL_STXCSUM}
	var ifr struct {
		name [unix.IFNAMSIZ]byte
		data unsafe.Pointer
		_    [16]byte
	}
	copy(ifr.name[:], name)
	ifr.data = unsafe.Pointer(&value)
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&ifr))); errno != 0 {
		return errno
	}
	return nil
}

// (XDP) With the fast path on its LAN interface the leader answers what
// it answers without: V1 probes for held content through the fast path
// (whose held map follows the store), over IPv4 and IPv6; V2 probes on
// the socket path; content held nowhere gets silence, dropped before the
// stack. The leader's stats show the mode and the counters.
func TestXDPFastPath(t *testing.T) {
	l := newLab(t)
	l.subnet(1)
	leaderNS := l.host("olx", [2]int{1, 2})
	client := l.host("olxc", [2]int{1, 10})
	client.Do(t, func() error { return txChecksumOff("eth0") })
	p := leaderParams(t, "eth0")
	p.Hold = []Content{contentA, contentV2}
	p.XDP = "auto"
	leader := start(t, leaderNS, "leader", "leader", p)

	ciA, _ := writeCI(t, contentA)
	for family, want := range map[string]string{"4": ip(1, 2) + ":1337", "6": "[fd00:61::2]:1337"} {
		res, code := probe(t, client, "eth0", ciA, "--family", family)
		if xa := xaddrs(res); code != 0 || res.Answered != len(res.Segments) || xa[want] != len(res.Segments) || len(xa) != 1 {
			t.Fatalf("IPv%s: exit %d, %+v, want every segment answered by %s", family, code, res, want)
		}
	}
	ciV2, _ := writeCI(t, contentV2)
	if res, code := probe(t, client, "eth0", ciV2, "--v2", "--family", "4"); code != 0 || res.Answered != len(res.Segments) {
		t.Fatalf("V2 probe: exit %d, %+v", code, res)
	}
	ciN, _ := writeCI(t, nobodys)
	if res, code := probe(t, client, "eth0", ciN, "--family", "4"); code != 1 || res.Answered != 0 {
		t.Fatalf("probe for content nobody holds: exit %d, %+v", code, res)
	}

	s := leader.stats()
	x, ok := s.XDP["eth0"]
	if !ok || x.Mode != probexdp.Native || x.Error != "" {
		t.Fatalf("XDP on eth0: %+v (error %q), want native", x, s.XDPError)
	}
	c := x.Counters
	if c.CapturedHeld < 2 || c.DropNotHeld < 1 || c.PassV2 < 1 {
		t.Errorf("XDP counters %+v: want the held V1 probes captured, the unheld one dropped, the V2 one passed", c)
	}
	if len(s.Interfaces) != 1 || s.Interfaces[0].Captured != c.Captured || s.Interfaces[0].ProbesAnswered < 3 {
		t.Errorf("responder stats %+v, XDP captured %d", s.Interfaces, c.Captured)
	}
}
