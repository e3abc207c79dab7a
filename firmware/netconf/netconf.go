// Package netconf configures the appliance's network over netlink:
// loopback, the [[interface]] entries (802.1Q VLAN sub-interfaces, static
// IPv4/IPv6 addresses, gateways, DNS) and DHCPv4 leases kept renewed by a
// supervised service. Only PID 1 uses it: as a daemon, Outpost never
// changes the host's network.
package netconf

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sort"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/outpost-appliance/outpost/firmware/config"
)

// Options tune the configuration.
type Options struct {
	// LinkTimeout is how long to wait for an interface to appear (drivers
	// load, USB NICs enumerate) and come up. Default 10 s.
	LinkTimeout time.Duration
	// Resolv receives the DNS servers; nil writes none.
	Resolv *Resolv
	Logger *slog.Logger
}

func (o *Options) defaults() {
	if o.LinkTimeout == 0 {
		o.LinkTimeout = 10 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// Loopback brings lo up.
func Loopback() error {
	lo, err := netlink.LinkByName("lo")
	if err == nil {
		err = netlink.LinkSetUp(lo)
	}
	if err != nil {
		return fmt.Errorf("netconf: lo: %w", err)
	}
	return nil
}

// Apply configures each interface: creates VLAN sub-interfaces, brings
// links up, sets static addresses and gateways, and records static DNS
// servers. DHCP is not done here (see DHCP). A failing interface does not
// stop the others: the errors of all are returned together.
func Apply(ctx context.Context, ifaces []config.Interface, opts Options) error {
	opts.defaults()
	var errs []error
	for _, ifc := range ifaces {
		if err := applyOne(ctx, ifc, opts); err != nil {
			errs = append(errs, fmt.Errorf("netconf: interface %q: %w", ifc.LinkName(), err))
			opts.Logger.Error("interface not configured", "interface", ifc.LinkName(), "err", err)
		}
	}
	return errors.Join(errs...)
}

func applyOne(ctx context.Context, ifc config.Interface, opts Options) error {
	link, err := WaitLink(ctx, ifc.Name, opts.LinkTimeout)
	if err != nil {
		return err
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return fmt.Errorf("set %s up: %w", ifc.Name, err)
	}
	if ifc.VLAN != 0 {
		if link, err = ensureVLAN(link, ifc.LinkName(), ifc.VLAN); err != nil {
			return err
		}
		if err := netlink.LinkSetUp(link); err != nil {
			return fmt.Errorf("set up: %w", err)
		}
	}
	for _, a := range ifc.Address {
		addr := &netlink.Addr{IPNet: &net.IPNet{IP: a.Addr().AsSlice(), Mask: net.CIDRMask(a.Bits(), a.Addr().BitLen())}}
		if err := netlink.AddrReplace(link, addr); err != nil {
			return fmt.Errorf("address %s: %w", a, err)
		}
	}
	for _, gw := range ifc.Gateway {
		route := &netlink.Route{LinkIndex: link.Attrs().Index, Gw: gw.AsSlice()}
		if err := netlink.RouteReplace(route); err != nil {
			return fmt.Errorf("default route via %s: %w", gw, err)
		}
	}
	if opts.Resolv != nil && len(ifc.DNS) > 0 {
		servers := make([]net.IP, len(ifc.DNS))
		for i, d := range ifc.DNS {
			servers[i] = d.AsSlice()
		}
		if err := opts.Resolv.Set("static:"+ifc.LinkName(), servers, nil, ""); err != nil {
			return err
		}
	}
	opts.Logger.Info("interface configured", "interface", ifc.LinkName(), "addresses", len(ifc.Address), "gateways", len(ifc.Gateway))
	return nil
}

// ensureVLAN returns the 802.1Q sub-interface name with ID id on parent,
// creating it if it does not exist.
func ensureVLAN(parent netlink.Link, name string, id int) (netlink.Link, error) {
	if l, err := netlink.LinkByName(name); err == nil {
		v, ok := l.(*netlink.Vlan)
		if !ok || v.VlanId != id || v.ParentIndex != parent.Attrs().Index {
			return nil, fmt.Errorf("%s exists but is not VLAN %d on %s", name, id, parent.Attrs().Name)
		}
		return l, nil
	}
	vlan := &netlink.Vlan{
		LinkAttrs: netlink.LinkAttrs{Name: name, ParentIndex: parent.Attrs().Index},
		VlanId:    id,
	}
	if err := netlink.LinkAdd(vlan); err != nil {
		return nil, fmt.Errorf("create VLAN %d on %s: %w", id, parent.Attrs().Name, err)
	}
	l, err := netlink.LinkByName(name)
	if err != nil {
		return nil, fmt.Errorf("created VLAN %d: %w", id, err)
	}
	return l, nil
}

// WaitLink waits up to timeout for the interface to exist.
func WaitLink(ctx context.Context, name string, timeout time.Duration) (netlink.Link, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		l, err := netlink.LinkByName(name)
		if err == nil {
			return l, nil
		}
		var notFound netlink.LinkNotFoundError
		if !errors.As(err, &notFound) {
			return nil, fmt.Errorf("look up %s: %w", name, err)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("no interface %s after %s", name, timeout)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// FirstEthernet waits up to timeout for an Ethernet interface and returns
// the one with the lowest index (eth0 on most boards): where the safe
// defaults run DHCP. Physical NICs and veths (containers, tests) count;
// VLANs, bridges, tunnels and the like do not.
func FirstEthernet(ctx context.Context, timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		links, err := netlink.LinkList()
		if err != nil {
			return "", fmt.Errorf("netconf: list interfaces: %w", err)
		}
		var names []netlink.Link
		for _, l := range links {
			a := l.Attrs()
			if a.EncapType == "ether" && len(a.HardwareAddr) == 6 && (l.Type() == "device" || l.Type() == "veth") {
				names = append(names, l)
			}
		}
		if len(names) > 0 {
			sort.Slice(names, func(i, j int) bool { return names[i].Attrs().Index < names[j].Attrs().Index })
			return names[0].Attrs().Name, nil
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("netconf: no Ethernet interface after %s", timeout)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
