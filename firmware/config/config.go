// Package config is Outpost's configuration: the schema of outpost.toml,
// its defaults, strict parsing with errors that name the key, line and
// column, validation, kernel command-line overrides (outpost.<key>=value),
// redacted display, and the safe-defaults fallback that keeps a box with a
// bad file running.
//
// The key names are a contract: admins, tests and the documentation rely
// on them. Add keys; never rename one.
package config

import (
	"os"
	"path/filepath"
	"strconv"

	"github.com/outpost-appliance/outpost/cache/preload/bandwidth"
	"github.com/outpost-appliance/outpost/cache/preload/window"
)

// Config is the whole configuration. The zero value is not useful: start
// from Default.
type Config struct {
	// Hostname of the box (kernel hostname; also the default name in the
	// hosted cache's self-signed certificate).
	Hostname string `toml:"hostname" json:"hostname"`
	// Interfaces to configure. Empty means: on the appliance, DHCP on the
	// first Ethernet interface; as a daemon, every interface the host has,
	// as it is.
	Interfaces  []Interface `toml:"interface" json:"interface"`
	Time        Time        `toml:"time" json:"time"`
	Cache       Cache       `toml:"cache" json:"cache"`
	HostedCache HostedCache `toml:"hosted_cache" json:"hosted_cache"`
	Peer        Peer        `toml:"peer" json:"peer"`
	Leader      Leader      `toml:"leader" json:"leader"`
	XDP         XDP         `toml:"xdp" json:"xdp"`
	API         API         `toml:"api" json:"api"`
	Log         Log         `toml:"log" json:"log"`
	Console     Console     `toml:"console" json:"console"`
	Preloading  Preloading  `toml:"preloading" json:"preloading"`
	// Preload lists content to pre-stage ([[preload]]).
	Preload []Preload `toml:"preload" json:"preload"`
}

// Interface is one [[interface]] entry: a network interface, or an 802.1Q
// VLAN sub-interface of one when VLAN is set.
type Interface struct {
	// Name of the interface ("eth0"), the parent when VLAN is set.
	Name string `toml:"name" json:"name"`
	// VLAN ID (1–4094) of a sub-interface named "<name>.<vlan>" that
	// Outpost creates on Name; 0 for the untagged interface.
	VLAN int `toml:"vlan" json:"vlan"`
	// Static addresses with prefix lengths.
	Address []Prefix `toml:"address" json:"address"`
	// Default gateways: at most one IPv4 and one IPv6.
	Gateway []Addr `toml:"gateway" json:"gateway"`
	// DNS servers, written to /etc/resolv.conf with those DHCP gives.
	DNS []Addr `toml:"dns" json:"dns"`
	// DHCP obtains an IPv4 address (DHCPv4).
	DHCP bool `toml:"dhcp" json:"dhcp"`
	// Role is "lan" (a branch subnet that Outpost serves) or "wan".
	Role Role `toml:"role" json:"role"`
}

// LinkName is the name of the interface Outpost uses: Name, or
// "<name>.<vlan>" for a VLAN sub-interface.
func (i Interface) LinkName() string {
	if i.VLAN == 0 {
		return i.Name
	}
	return i.Name + "." + strconv.Itoa(i.VLAN)
}

// Static reports whether the entry asks for any address configuration;
// an entry with only a name uses the addresses the interface already has.
func (i Interface) Static() bool {
	return len(i.Address) > 0 || i.DHCP || len(i.Gateway) > 0 || len(i.DNS) > 0
}

// Time is [time].
type Time struct {
	// NTP servers (host names or addresses, optionally host:port). Empty
	// turns NTP off; the clock then resumes from the last known time.
	NTP []string `toml:"ntp" json:"ntp"`
}

// Cache is [cache]: the segment store.
type Cache struct {
	// Dir holds the store; relative paths are under the data directory
	// (the OUTPOST-DATA partition on the appliance).
	Dir string `toml:"dir" json:"dir"`
	// MaxSize caps the store in bytes; 0 means only MaxPercent applies.
	MaxSize Size `toml:"max_size" json:"max_size"`
	// MaxPercent caps the store as a share of its filesystem; the smaller
	// of the two limits applies.
	MaxPercent Percent `toml:"max_percent" json:"max_percent"`
	// MaxAge evicts segments not accessed for this long; 0 never.
	MaxAge Duration `toml:"max_age" json:"max_age"`
	// LowDiskFloor: when the filesystem's free space falls below this
	// share, evict regardless of the limits.
	LowDiskFloor Percent `toml:"low_disk_floor" json:"low_disk_floor"`
	// Profile tunes the store for the board's memory.
	Profile Profile `toml:"profile" json:"profile"`
}

// HostedCache is [hosted_cache]: the MS-PCHC/MS-PCCRR servers.
type HostedCache struct {
	HTTPListen  ListenAddr `toml:"http_listen" json:"http_listen"`
	HTTPSListen ListenAddr `toml:"https_listen" json:"https_listen"`
	// TLSCert and TLSKey are PEM files (relative paths: beside the
	// configuration file). Both empty: a self-signed certificate is made
	// on first start and kept on the data partition.
	TLSCert string `toml:"tls_cert" json:"tls_cert"`
	TLSKey  string `toml:"tls_key" json:"tls_key"`
	// Hostname clients use to reach the hosted cache (the name in the
	// self-signed certificate); empty means the box's hostname.
	Hostname string `toml:"hostname" json:"hostname"`
	// MaxUploads caps concurrent block requests served.
	MaxUploads int `toml:"max_uploads" json:"max_uploads"`
}

// Peer is [peer]: MS-PCCRR for clients that found Outpost by discovery.
type Peer struct {
	Listen ListenAddr `toml:"listen" json:"listen"`
	// ReplyDelay before answering a probe: random in the range.
	ReplyDelay DelayRange `toml:"reply_delay" json:"reply_delay"`
}

// Leader is [leader]: discovery forwarding between branch leaders.
type Leader struct {
	// RelayListen serves blocks relayed from peers in other subnets.
	RelayListen ListenAddr `toml:"relay_listen" json:"relay_listen"`
	// Forward sends probes for content not held here to the peers.
	Forward bool `toml:"forward" json:"forward"`
	// Peers are the other leaders ([[leader.peer]]).
	Peers []LeaderPeer `toml:"peer" json:"peer"`
	// Secret shared with every peer (at least 16 characters), or
	// SecretFile holding it (relative: beside the configuration file).
	Secret     Secret `toml:"secret" json:"secret"`
	SecretFile string `toml:"secret_file" json:"secret_file"`
}

// LeaderPeer is one [[leader.peer]].
type LeaderPeer struct {
	// Address is a host name or IP address, optionally with ":port".
	Address string `toml:"address" json:"address"`
	Name    string `toml:"name" json:"name"`
}

// XDP is [xdp]: the discovery fast path.
type XDP struct {
	Mode XDPMode `toml:"mode" json:"mode"`
	// ProbeRatePerSource caps probes per second accepted from one source
	// address; 0 means no limit.
	ProbeRatePerSource int `toml:"probe_rate_per_source" json:"probe_rate_per_source"`
	// ProbeBurstPerSource is how many probes one source may send at once
	// within that rate; 0 means twice the rate.
	ProbeBurstPerSource int `toml:"probe_burst_per_source" json:"probe_burst_per_source"`
}

// API is [api]: the management API and status page.
type API struct {
	Listen ListenAddr `toml:"listen" json:"listen"`
	// Token (at least 16 characters) or TokenFile is required for every
	// call that changes something; without one those calls are refused.
	Token     Secret `toml:"token" json:"token"`
	TokenFile string `toml:"token_file" json:"token_file"`
	// ReadOnlyAnonymous lets reads through without the token.
	ReadOnlyAnonymous bool `toml:"read_only_anonymous" json:"read_only_anonymous"`
}

// Log is [log].
type Log struct {
	Level LogLevel `toml:"level" json:"level"`
	// RingSize caps the log kept on the data partition across reboots.
	RingSize Size `toml:"ring_size" json:"ring_size"`
}

// Console is [console]: the appliance's serial console.
type Console struct {
	// Shell offers the break-glass shell on the serial console (Enter
	// starts it). Off, the console only shows the log.
	Shell bool `toml:"shell" json:"shell"`
}

// Preloading is [preloading]: what every preload job shares, and the
// secret that injected content must be made with.
type Preloading struct {
	// Limit caps all preloading's WAN fetches together; 0: no limit.
	Limit bandwidth.Rate `toml:"limit" json:"limit"`
	// Versions of content information pre-staged when an entry names
	// none: 2 for Windows 8 and later, 1 for Windows 7.
	Versions []int `toml:"versions" json:"versions"`
	// MaxActive jobs fetch at once.
	MaxActive int `toml:"max_active" json:"max_active"`
	// Recheck runs every [[preload]] entry again this long after it
	// finished (new versions of the content, evicted blocks); 0: never.
	Recheck Duration `toml:"recheck" json:"recheck"`
	// ContentSecret is the content servers' BranchCache secret (the
	// passphrase of `netsh branchcache set key`), or ContentSecretFile
	// holding it: `outpost inject` uploads are refused unless their
	// content information was made with it.
	ContentSecret     Secret `toml:"content_secret" json:"content_secret"`
	ContentSecretFile string `toml:"content_secret_file" json:"content_secret_file"`
}

// Preload is one [[preload]] entry: content to keep pre-staged.
type Preload struct {
	// URL of the content on a BranchCache-enabled server (IIS, a BITS
	// server, `outpost origin`).
	URL string `toml:"url" json:"url"`
	// Window is a daily schedule window ("01:00-05:00", "22:00-06:00
	// Europe/Berlin"); outside it the job pauses. Empty: any time.
	Window window.Window `toml:"window" json:"window"`
	// Limit caps this entry's fetches; 0: only [preloading] limit.
	Limit bandwidth.Rate `toml:"limit" json:"limit"`
	// Versions of content information; empty: [preloading] versions.
	Versions []int `toml:"versions" json:"versions"`
}

// ResolveContentSecret returns the content servers' secret, reading
// ContentSecretFile if that is how it is given.
func (p Preloading) ResolveContentSecret() (Secret, error) {
	return resolveSecret(p.ContentSecret, p.ContentSecretFile)
}

// ResolveSecret returns the leader secret, reading SecretFile if that is
// how it is given.
func (l Leader) ResolveSecret() (Secret, error) { return resolveSecret(l.Secret, l.SecretFile) }

// ResolveToken returns the API token, reading TokenFile if that is how it
// is given.
func (a API) ResolveToken() (Secret, error) { return resolveSecret(a.Token, a.TokenFile) }

func resolveSecret(value Secret, file string) (Secret, error) {
	if file == "" {
		return value, nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return Secret{}, err
	}
	return NewSecret(trimNewline(string(b))), nil
}

func trimNewline(s string) string {
	for len(s) > 0 && (s[len(s)-1] == '\n' || s[len(s)-1] == '\r') {
		s = s[:len(s)-1]
	}
	return s
}

// CacheDir returns the store's directory, relative paths resolved against
// the data directory.
func (c *Config) CacheDir(dataDir string) string {
	if filepath.IsAbs(c.Cache.Dir) {
		return c.Cache.Dir
	}
	return filepath.Join(dataDir, c.Cache.Dir)
}
