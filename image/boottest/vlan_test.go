package boottest

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/outpost-appliance/outpost/peerdist/pccrc"
	"github.com/outpost-appliance/outpost/peerdist/pccrd"
)

// The VLAN-trunk check: the guest serves its untagged subnet and two
// 802.1Q VLANs on eth0. This host's kernel has no 802.1Q module, so the
// test speaks tagged Ethernet itself, with a packet socket on the tap: it
// multicasts a discovery probe tagged for a VLAN, answers the guest's
// tagged ARP request, and expects the ProbeMatch back on the same VLAN
// naming the guest's address on that VLAN's subnet.

// vlanSubnets are the guest's VLANs: ID, the guest's address, ours.
var vlanSubnets = []struct {
	id           uint16
	guest, local string
}{{10, "10.10.0.2", "10.10.0.1"}, {20, "10.20.0.2", "10.20.0.1"}}

// vlanAppend is the guest's command line for the trunk: eth0 untagged
// (the test's own segment) and the VLANs.
func vlanAppend() string {
	out := "outpost.interface.0.name=eth0 outpost.interface.0.address=" + guestAddr + "/24"
	for i, v := range vlanSubnets {
		n := strconv.Itoa(i + 1)
		out += " outpost.interface." + n + ".name=eth0 outpost.interface." + n + ".vlan=" + strconv.Itoa(int(v.id)) +
			" outpost.interface." + n + ".address=" + v.guest + "/24"
	}
	return out
}

// vlanTrunk offers content to the guest on the untagged subnet, then
// probes for it on each VLAN: the answer must come back tagged for that
// VLAN, from the guest's address on it, and the XDP fast path must run on
// the VLAN interfaces (generic) and leave the trunk port alone.
func (e *env) vlanTrunk(ctx context.Context) {
	e.t.Helper()
	content := filepath.Join(e.dir, "content")
	data := make([]byte, 200000)
	rand.Read(data)
	if err := os.WriteFile(content, data, 0o644); err != nil {
		e.t.Fatal(err)
	}
	ciPath := filepath.Join(e.dir, "v1.ci")
	e.outpostCmd(ctx, "ci", "hash", "--version", "1", "--secret", "boottest", "-o", ciPath, content)
	e.outpostCmd(ctx, "offer", "--to", guestAddr+":1339", "--version", "1", "--ci", ciPath, "--data", content, "--listen", hostAddr+":0", "--timeout", "90s")
	raw, err := os.ReadFile(ciPath)
	if err != nil {
		e.t.Fatal(err)
	}
	ci, err := pccrc.Parse(raw)
	if err != nil {
		e.t.Fatal(err)
	}
	e.probeVLANs(ctx, ci.ID(0))
	e.xdp(ctx, "eth0", func(mode string, _ map[string]uint64) bool { return mode == "off" }, "left alone (a trunk port)")
	for _, v := range vlanSubnets {
		e.xdp(ctx, "eth0."+strconv.Itoa(int(v.id)), func(mode string, c map[string]uint64) bool {
			return mode == "generic" && c["captured-held"] > 0
		}, "attached in generic mode, tagged probes captured")
	}
}

// vlanProbeResult is what TestVLANProbeHelper prints.
type vlanProbeResult struct {
	VLAN      uint16   `json:"vlan"`
	From      string   `json:"from"`
	XAddrs    []string `json:"xaddrs"`
	RelatesTo string   `json:"relates_to"`
}

// probeVLANs probes every VLAN of the guest for segmentID from the
// namespace and checks the answers.
func (e *env) probeVLANs(ctx context.Context, segmentID []byte) {
	e.t.Helper()
	for _, v := range vlanSubnets {
		cmd := exec.CommandContext(ctx, "ip", "netns", "exec", e.ns, os.Args[0], "-test.run=^TestVLANProbeHelper$")
		cmd.Env = append(os.Environ(), "OUTPOST_BOOTTEST_VLAN="+strings.Join([]string{
			"tap0", strconv.Itoa(int(v.id)), v.local, hex.EncodeToString(segmentID)}, ","))
		out, err := cmd.CombinedOutput()
		if err != nil {
			e.t.Fatalf("probe on VLAN %d: %v\n%s", v.id, err, out)
		}
		var res vlanProbeResult
		var line string
		for _, l := range strings.Split(string(out), "\n") {
			if strings.HasPrefix(l, "{") {
				line = l
			}
		}
		if err := json.Unmarshal([]byte(line), &res); err != nil {
			e.t.Fatalf("probe on VLAN %d: %v\n%s", v.id, err, out)
		}
		if res.VLAN != v.id || res.From != v.guest || len(res.XAddrs) == 0 || !strings.HasPrefix(res.XAddrs[0], v.guest+":") {
			e.t.Fatalf("probe on VLAN %d: answered %+v, want the guest's %s on that VLAN", v.id, res, v.guest)
		}
		e.t.Logf("VLAN %d: ProbeMatch from %s, XAddrs %v", v.id, res.From, res.XAddrs)
	}
}

// TestVLANProbeHelper is the tagged prober probeVLANs runs in the
// namespace: OUTPOST_BOOTTEST_VLAN=iface,vlan,local-ip,segment-hex.
func TestVLANProbeHelper(t *testing.T) {
	spec := os.Getenv("OUTPOST_BOOTTEST_VLAN")
	if spec == "" {
		t.Skip("helper for TestBoot")
	}
	parts := strings.Split(spec, ",")
	vid, _ := strconv.Atoi(parts[1])
	local := netip.MustParseAddr(parts[2])
	segment, _ := hex.DecodeString(parts[3])
	ifc, err := net.InterfaceByName(parts[0])
	if err != nil {
		t.Fatal(err)
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, int(htons(unix.ETH_P_ALL)))
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifc.Index}); err != nil {
		t.Fatal(err)
	}
	// The stack moves a received tag into metadata; auxdata gives it back.
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_AUXDATA, 1); err != nil {
		t.Fatal(err)
	}
	unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Usec: 200000})
	mac := net.HardwareAddr{0x02, 0x77, 0, 0, byte(vid >> 8), byte(vid)}
	send := func(frame []byte) {
		if err := unix.Sendto(fd, frame, 0, &unix.SockaddrLinklayer{Ifindex: ifc.Index, Halen: 6}); err != nil {
			t.Fatal(err)
		}
	}
	var uuid [16]byte
	rand.Read(uuid[:])
	messageID := fmt.Sprintf("urn:uuid:%x-%x-%x-%x-%x", uuid[0:4], uuid[4:6], uuid[6:8], uuid[8:10], uuid[10:16])
	probe, err := (&pccrd.Probe{MessageID: messageID, Version: pccrd.V1, SegmentIDs: [][]byte{segment}}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	group := netip.MustParseAddr("239.255.255.250")
	probeFrame := ethernet(net.HardwareAddr{0x01, 0x00, 0x5e, 0x7f, 0xff, 0xfa}, mac, uint16(vid), 0x0800,
		ipv4UDP(local, group, 54321, 3702, probe))

	buf, oob := make([]byte, 9000), make([]byte, 256)
	deadline := time.Now().Add(20 * time.Second)
	for next := time.Now(); time.Now().Before(deadline); {
		if time.Now().After(next) {
			send(probeFrame) // again each second: the first may wait for ARP
			next = time.Now().Add(time.Second)
		}
		n, oobn, _, from, err := unix.Recvmsg(fd, buf, oob, 0)
		if err != nil {
			continue
		}
		if ll, ok := from.(*unix.SockaddrLinklayer); !ok || ll.Pkttype == unix.PACKET_OUTGOING {
			continue
		}
		tag, ok := vlanOf(oob[:oobn])
		frame := buf[:n]
		if len(frame) >= 18 && binary.BigEndian.Uint16(frame[12:]) == 0x8100 { // tag left in the data
			tag, ok = binary.BigEndian.Uint16(frame[14:])&0xfff, true
			frame = append(frame[:12:12], frame[16:]...)
		}
		if !ok || int(tag) != vid || len(frame) < 14 {
			continue
		}
		peer := net.HardwareAddr(frame[6:12])
		switch binary.BigEndian.Uint16(frame[12:]) {
		case 0x0806: // ARP: who has our address?
			arp := frame[14:]
			if len(arp) >= 28 && binary.BigEndian.Uint16(arp[6:]) == 1 && netip.AddrFrom4([4]byte(arp[24:28])) == local {
				reply := append([]byte{0, 1, 8, 0, 6, 4, 0, 2}, mac...)
				reply = append(append(append(reply, local.AsSlice()...), arp[8:14]...), arp[14:18]...) // to the asker
				send(ethernet(peer, mac, uint16(vid), 0x0806, reply))
			}
		case 0x0800:
			ip := frame[14:]
			if len(ip) < 28 || ip[9] != unix.IPPROTO_UDP || netip.AddrFrom4([4]byte(ip[16:20])) != local {
				continue
			}
			hl := int(ip[0]&0xf) * 4
			if len(ip) < hl+8 || binary.BigEndian.Uint16(ip[hl+2:]) != 54321 {
				continue
			}
			m, err := pccrd.ParseProbeMatch(ip[hl+8:])
			if err != nil || m.RelatesTo != messageID {
				continue
			}
			out, _ := json.Marshal(vlanProbeResult{VLAN: tag, From: netip.AddrFrom4([4]byte(ip[12:16])).String(), XAddrs: m.XAddrs, RelatesTo: m.RelatesTo})
			fmt.Println(string(out))
			return
		}
	}
	t.Fatalf("no ProbeMatch for %s on VLAN %d", messageID, vid)
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// vlanOf reads the VLAN ID from a packet socket's auxdata.
func vlanOf(oob []byte) (uint16, bool) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return 0, false
	}
	for _, m := range msgs {
		if m.Header.Level == unix.SOL_PACKET && m.Header.Type == unix.PACKET_AUXDATA && len(m.Data) >= int(unsafe.Sizeof(unix.TpacketAuxdata{})) {
			aux := (*unix.TpacketAuxdata)(unsafe.Pointer(&m.Data[0]))
			if aux.Status&unix.TP_STATUS_VLAN_VALID != 0 {
				return aux.Vlan_tci & 0xfff, true
			}
		}
	}
	return 0, false
}

// ethernet frames payload with an 802.1Q tag.
func ethernet(dst, src net.HardwareAddr, vid, etherType uint16, payload []byte) []byte {
	b := append(append([]byte{}, dst...), src...)
	b = binary.BigEndian.AppendUint16(b, 0x8100)
	b = binary.BigEndian.AppendUint16(b, vid&0xfff)
	b = binary.BigEndian.AppendUint16(b, etherType)
	return append(b, payload...)
}

// ipv4UDP makes an IPv4 UDP datagram with both checksums.
func ipv4UDP(src, dst netip.Addr, sport, dport uint16, payload []byte) []byte {
	udp := binary.BigEndian.AppendUint16(nil, sport)
	udp = binary.BigEndian.AppendUint16(udp, dport)
	udp = binary.BigEndian.AppendUint16(udp, uint16(8+len(payload)))
	udp = append(append(udp, 0, 0), payload...)
	pseudo := append(append(src.AsSlice(), dst.AsSlice()...), 0, unix.IPPROTO_UDP)
	pseudo = binary.BigEndian.AppendUint16(pseudo, uint16(len(udp)))
	sum := checksum(append(pseudo, udp...))
	if sum == 0 {
		sum = 0xffff
	}
	binary.BigEndian.PutUint16(udp[6:], sum)
	ip := []byte{0x45, 0, 0, 0, 0, 0, 0, 0, 1, unix.IPPROTO_UDP, 0, 0}
	binary.BigEndian.PutUint16(ip[2:], uint16(20+len(udp)))
	ip = append(append(ip, src.AsSlice()...), dst.AsSlice()...)
	binary.BigEndian.PutUint16(ip[10:], checksum(ip))
	return append(ip, udp...)
}

func checksum(b []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}
