package api

import (
	"net"
	"sort"
	"time"

	"github.com/outpost-appliance/outpost/firmware/config"
	"github.com/outpost-appliance/outpost/firmware/report"
	"github.com/outpost-appliance/outpost/firmware/supervise"
)

// Status is GET /api/v1/status: what the box is and how its services are.
type Status struct {
	Version  string `json:"version"`
	Mode     Mode   `json:"mode"`
	Hostname string `json:"hostname"`
	// Board is the hardware (device-tree model or DMI product name).
	Board string `json:"board,omitempty"`
	// Started is when the process started; Uptime is in seconds.
	Started       time.Time `json:"started"`
	UptimeSeconds float64   `json:"uptime_seconds"`
	// Ready is true once every service has been running.
	Ready      bool               `json:"ready"`
	Time       TimeSync           `json:"time"`
	Interfaces []Interface        `json:"interfaces"`
	Services   []supervise.Status `json:"services"`
	Config     ConfigStatus       `json:"config"`
	// Notices are conditions an admin should know of (no data partition:
	// the cache does not survive a reboot, …).
	Notices []string `json:"notices,omitempty"`
	// TLSThumbprint is the SHA-1 thumbprint of the hosted cache's HTTPS
	// certificate, what Windows admins compare or type into netsh.
	TLSThumbprint string `json:"tls_thumbprint,omitempty"`
	Memory        Memory `json:"memory"`
}

// Mode says how outpost runs.
type Mode string

// Modes.
const (
	ModeAppliance Mode = "appliance" // PID 1 of the image
	ModeDaemon    Mode = "daemon"    // outpost run on a host
)

// Interface is a network interface of the host and its addresses.
type Interface struct {
	Name      string   `json:"name"`
	Index     int      `json:"index"`
	MAC       string   `json:"mac,omitempty"`
	MTU       int      `json:"mtu"`
	Up        bool     `json:"up"`
	Addresses []string `json:"addresses"`
	// Configured: listed in [[interface]]; Role is its role then.
	Configured bool   `json:"configured"`
	Role       string `json:"role,omitempty"`
	// XDP is the discovery fast path's mode on the interface ("native",
	// "generic", "off"); empty where discovery does not run. XDPError
	// says why it is off; XDPCounters are its outcome counters
	// ("captured", "drop-not-held", "pass-v2", …; ebpf/probexdp).
	XDP         string            `json:"xdp,omitempty"`
	XDPError    string            `json:"xdp_error,omitempty"`
	XDPCounters map[string]uint64 `json:"xdp_counters,omitempty"`
}

// TimeSync is the state of the clock: certificates, segment ages and the
// event log's times depend on it.
type TimeSync struct {
	// Now is the box's time, to compare with a watch.
	Now time.Time `json:"now"`
	// Synced: the clock is disciplined (by NTP).
	Synced bool `json:"synced"`
	// Source says who reports it.
	Source string `json:"source"`
	// EstimatedErrorSeconds is the kernel's estimate when synced.
	EstimatedErrorSeconds float64 `json:"estimated_error_seconds,omitempty"`
}

// withXDPModes fills in each interface's XDP mode and counters from
// discovery.
func withXDPModes(ifaces []Interface, d report.Discovery) []Interface {
	for _, di := range d.Interfaces {
		for i := range ifaces {
			if ifaces[i].Name == di.Name {
				ifaces[i].XDP = di.XDPMode
				ifaces[i].XDPError = di.XDPError
				ifaces[i].XDPCounters = di.XDPCounters
			}
		}
	}
	return ifaces
}

// ConfigStatus says where the configuration came from and whether the box
// fell back to safe defaults because of errors in it.
type ConfigStatus struct {
	Source   string           `json:"source"`
	SafeMode bool             `json:"safe_mode"`
	Errors   []config.Problem `json:"errors,omitempty"`
}

// HostInterfaces lists the host's interfaces and addresses, marking those
// the configuration names.
func HostInterfaces(cfg *config.Config) ([]Interface, error) {
	ifaces, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	roles := map[string]string{}
	if cfg != nil {
		for _, c := range cfg.Interfaces {
			roles[c.LinkName()] = string(c.Role)
		}
	}
	out := make([]Interface, 0, len(ifaces))
	for _, ifi := range ifaces {
		i := Interface{
			Name:      ifi.Name,
			Index:     ifi.Index,
			MAC:       ifi.HardwareAddr.String(),
			MTU:       ifi.MTU,
			Up:        ifi.Flags&net.FlagUp != 0,
			Addresses: []string{},
		}
		i.Role, i.Configured = roles[ifi.Name]
		if addrs, err := ifi.Addrs(); err == nil {
			for _, a := range addrs {
				i.Addresses = append(i.Addresses, a.String())
			}
		}
		out = append(out, i)
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Index < out[b].Index })
	return out, nil
}
