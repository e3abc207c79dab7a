package netconf

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"
	"github.com/u-root/u-root/pkg/dhclient"
	"github.com/vishvananda/netlink"
)

// DHCP keeps a DHCPv4 lease on one interface: it obtains a lease with
// u-root's dhclient, configures the address (with the lease's lifetime, so
// the kernel drops it if Outpost stops renewing), routes and DNS, reports
// ready, then renews at T1 until the lease is lost. Run it under the
// supervisor: a lost lease is an error, and the restart starts over with a
// new DISCOVER.
type DHCP struct {
	// Interface is the link to configure ("eth0", "eth0.10").
	Interface string
	// Hostname is sent to the server (option 12), so the lease is named.
	Hostname string
	Options  Options
	// OnLease, if set, is called after each lease or renewal is applied.
	OnLease func(ack *dhcpv4.DHCPv4)
}

// Name is "dhcp:<interface>".
func (d *DHCP) Name() string { return "dhcp:" + d.Interface }

// DHCP exchange timing: a few quick attempts per run; the supervisor's
// backoff spaces the runs.
const (
	dhcpTimeout = 3 * time.Second
	dhcpRetries = 3
)

// Run obtains and keeps the lease until ctx ends.
func (d *DHCP) Run(ctx context.Context, ready func()) error {
	opts := d.Options
	opts.defaults()
	log := opts.Logger.With("interface", d.Interface)
	link, err := WaitLink(ctx, d.Interface, opts.LinkTimeout)
	if err != nil {
		return err
	}
	mods := []dhcpv4.Modifier{dhcpv4.WithOption(dhcpv4.OptClassIdentifier("outpost"))}
	if d.Hostname != "" {
		mods = append(mods, dhcpv4.WithOption(dhcpv4.OptHostName(d.Hostname)))
	}
	results := dhclient.SendRequests(ctx, []netlink.Link{link}, true, false, dhclient.Config{
		Timeout: dhcpTimeout, Retries: dhcpRetries, Modifiers4: mods,
	}, opts.LinkTimeout)
	var ack *dhcpv4.DHCPv4
	for r := range results {
		if r.Err != nil {
			err = r.Err
			continue
		}
		if p, ok := r.Lease.(*dhclient.Packet4); ok {
			ack = p.P
		}
	}
	if ack == nil {
		if err == nil {
			err = errors.New("interface did not come up")
		}
		return fmt.Errorf("dhcp %s: no lease: %w", d.Interface, err)
	}
	if err := d.apply(link, ack); err != nil {
		return err
	}
	log.Info("DHCP lease", "address", ack.YourIPAddr, "server", ack.ServerIdentifier(), "lease", ack.IPAddressLeaseTime(0))
	ready()
	return d.keep(ctx, link, ack, mods, log)
}

// keep renews the lease at T1 (then every half of the remaining time)
// until it expires.
func (d *DHCP) keep(ctx context.Context, link netlink.Link, ack *dhcpv4.DHCPv4, mods []dhcpv4.Modifier, log *slog.Logger) error {
	got := time.Now()
	for {
		leaseTime := ack.IPAddressLeaseTime(time.Hour)
		expiry := got.Add(leaseTime)
		wait := ack.IPAddressRenewalTime(leaseTime / 2)
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(time.Until(got.Add(wait))):
			}
			renewed, err := d.renew(ctx, ack, mods)
			if err == nil {
				ack, got = renewed, time.Now()
				break
			}
			remaining := time.Until(expiry)
			log.Warn("DHCP renewal failed", "err", err, "lease_left", remaining.Round(time.Second))
			if remaining <= 2*dhcpTimeout {
				return fmt.Errorf("dhcp %s: lease expired: %w", d.Interface, err)
			}
			wait = time.Since(got) + max(remaining/2, dhcpTimeout)
		}
		if err := d.apply(link, ack); err != nil {
			return err
		}
		log.Debug("DHCP lease renewed", "address", ack.YourIPAddr, "lease", ack.IPAddressLeaseTime(0))
	}
}

func (d *DHCP) renew(ctx context.Context, ack *dhcpv4.DHCPv4, mods []dhcpv4.Modifier) (*dhcpv4.DHCPv4, error) {
	client, err := nclient4.New(d.Interface, nclient4.WithTimeout(dhcpTimeout), nclient4.WithRetry(dhcpRetries))
	if err != nil {
		return nil, err
	}
	defer client.Close()
	// The ACK carries the server identifier that Renew needs from the offer.
	lease, err := client.Renew(ctx, &nclient4.Lease{Offer: ack, ACK: ack}, mods...)
	if err != nil {
		return nil, err
	}
	return lease.ACK, nil
}

// apply configures what the lease gives, as dhclient's Packet4.Configure
// does, but with the lease lifetime on the address and DNS through
// Resolv (Configure writes /etc/resolv.conf itself, which would clobber
// other sources and the host's file in tests).
func (d *DHCP) apply(link netlink.Link, ack *dhcpv4.DHCPv4) error {
	p := dhclient.NewPacket4(link, ack)
	lifetime := int(ack.IPAddressLeaseTime(time.Hour).Seconds())
	addr := &netlink.Addr{IPNet: p.Lease(), ValidLft: lifetime, PreferedLft: lifetime}
	if err := netlink.AddrReplace(link, addr); err != nil {
		return fmt.Errorf("dhcp %s: address %s: %w", d.Interface, addr.IPNet, err)
	}
	// RFC 3442: classless static routes, when given, replace the router
	// option.
	var routes []*netlink.Route
	if static := ack.ClasslessStaticRoute(); static != nil {
		for _, r := range static {
			route := &netlink.Route{LinkIndex: link.Attrs().Index, Dst: r.Dest, Gw: r.Router}
			if r.Router == nil || r.Router.Equal(net.IPv4zero) {
				route.Gw, route.Scope = nil, netlink.SCOPE_LINK
			}
			routes = append(routes, route)
		}
	} else if gw := ack.Router(); len(gw) > 0 {
		routes = append(routes, &netlink.Route{LinkIndex: link.Attrs().Index, Gw: gw[0]})
	}
	for _, r := range routes {
		if err := netlink.RouteReplace(r); err != nil {
			return fmt.Errorf("dhcp %s: route %s: %w", d.Interface, r, err)
		}
	}
	if d.Options.Resolv != nil {
		ns, search, domain := p.GatherDNSSettings()
		if err := d.Options.Resolv.Set("dhcp:"+d.Interface, ns, search, domain); err != nil {
			return err
		}
	}
	if d.OnLease != nil {
		d.OnLease(ack)
	}
	return nil
}
