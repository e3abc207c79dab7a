package config

import (
	"fmt"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Limits of values that Validate enforces.
const (
	minSecretLen   = 16
	minCacheSize   = 64 << 20
	minRingSize    = 64 << 10
	maxRingSize    = 1 << 30
	maxReplyDelay  = time.Second
	maxLinkNameLen = 15 // IFNAMSIZ - 1
)

// Validate checks every value and the relations between values, and
// returns one problem per mistake (empty when the configuration is
// usable). Problems carry the key; Parse adds the line and column.
func Validate(c *Config) []Problem {
	var p []Problem
	add := func(key, format string, args ...any) { p = append(p, problemf(key, format, args...)) }

	if err := checkHostname(c.Hostname); err != nil {
		add("hostname", "%v", err)
	}
	p = append(p, validateInterfaces(c.Interfaces)...)
	for i, s := range c.Time.NTP {
		if err := checkHostPort(s); err != nil {
			add(fmt.Sprintf("time.ntp[%d]", i), "%v", err)
		}
	}

	// [cache]
	if strings.TrimSpace(c.Cache.Dir) == "" {
		add("cache.dir", "must not be empty; expected a directory (relative paths are under the data partition)")
	}
	if c.Cache.MaxSize < 0 || (c.Cache.MaxSize > 0 && c.Cache.MaxSize < minCacheSize) {
		add("cache.max_size", "%s is too small: expected 0 (no byte limit) or at least %s; did you forget the unit, as in \"20GiB\"?", c.Cache.MaxSize, Size(minCacheSize))
	}
	if c.Cache.MaxPercent <= 0 || c.Cache.MaxPercent > 100 {
		add("cache.max_percent", "%s is out of range: expected more than 0%% and at most 100%%", c.Cache.MaxPercent)
	}
	if c.Cache.MaxAge < 0 {
		add("cache.max_age", "must not be negative: expected a duration such as \"28d\", or 0 for no limit")
	}
	if c.Cache.LowDiskFloor < 0 || c.Cache.LowDiskFloor > 50 {
		add("cache.low_disk_floor", "%s is out of range: expected 0%% to 50%%", c.Cache.LowDiskFloor)
	}
	if c.Cache.Profile == "" {
		add("cache.profile", `must be "small" or "large"`)
	}

	// [hosted_cache]
	if (c.HostedCache.TLSCert == "") != (c.HostedCache.TLSKey == "") {
		key := "hosted_cache.tls_key"
		if c.HostedCache.TLSCert == "" {
			key = "hosted_cache.tls_cert"
		}
		add(key, "tls_cert and tls_key go together: set both (PEM files), or neither for a self-signed certificate")
	}
	if c.HostedCache.Hostname != "" {
		if err := checkHostname(c.HostedCache.Hostname); err != nil {
			add("hosted_cache.hostname", "%v", err)
		}
	}
	if c.HostedCache.MaxUploads < 1 || c.HostedCache.MaxUploads > 65536 {
		add("hosted_cache.max_uploads", "%d is out of range: expected 1 to 65536", c.HostedCache.MaxUploads)
	}

	// [peer]
	if d := c.Peer.ReplyDelay; d.Min < 0 || d.Max < d.Min || d.Max > maxReplyDelay {
		add("peer.reply_delay", "%s is not a valid range: expected MIN-MAX with 0 <= MIN <= MAX <= %s, e.g. \"1ms-65ms\"", d, FormatDuration(maxReplyDelay))
	}

	// [leader]
	p = append(p, validateLeader(&c.Leader)...)

	// [xdp]
	if c.XDP.Mode == "" {
		add("xdp.mode", `must be "native", "generic", "off" or "auto"`)
	}
	if c.XDP.ProbeRatePerSource < 0 || c.XDP.ProbeRatePerSource > 1_000_000 {
		add("xdp.probe_rate_per_source", "%d is out of range: expected 0 (no limit) to 1000000 probes per second", c.XDP.ProbeRatePerSource)
	}
	if c.XDP.ProbeBurstPerSource < 0 || c.XDP.ProbeBurstPerSource > 1_000_000 {
		add("xdp.probe_burst_per_source", "%d is out of range: expected 0 (twice the rate) to 1000000 probes", c.XDP.ProbeBurstPerSource)
	}

	// [api]
	if c.API.Listen == "" {
		add("api.listen", "must not be empty: the API is how the box is watched; expected a listening address such as \":9000\"")
	}
	if c.API.Token.IsSet() && c.API.TokenFile != "" {
		add("api.token_file", "token and token_file are exclusive: set one")
	}
	if c.API.Token.IsSet() && len(c.API.Token.Reveal()) < minSecretLen {
		add("api.token", "too short (%d characters): expected at least %d", len(c.API.Token.Reveal()), minSecretLen)
	}

	// [log]
	if c.Log.Level == "" {
		add("log.level", `must be "debug", "info", "warn" or "error"`)
	}
	if c.Log.RingSize < minRingSize || c.Log.RingSize > maxRingSize {
		add("log.ring_size", "%s is out of range: expected %s to %s", c.Log.RingSize, Size(minRingSize), Size(maxRingSize))
	}

	p = append(p, validatePreload(c)...)
	p = append(p, checkPortClashes(c)...)
	return p
}

// validatePreload checks [preloading] and the [[preload]] entries.
func validatePreload(c *Config) []Problem {
	var p []Problem
	add := func(key, format string, args ...any) { p = append(p, problemf(key, format, args...)) }
	pl := &c.Preloading
	if len(pl.Versions) == 0 {
		add("preloading.versions", "must not be empty: expected [2] (Windows 8 and later), [1] (Windows 7) or [1, 2]")
	} else if err := checkVersions(pl.Versions); err != "" {
		add("preloading.versions", "%s", err)
	}
	if pl.Limit < 0 {
		add("preloading.limit", "must not be negative")
	}
	if pl.MaxActive < 1 || pl.MaxActive > 16 {
		add("preloading.max_active", "%d is out of range: expected 1 to 16 jobs at once", pl.MaxActive)
	}
	if pl.Recheck < 0 {
		add("preloading.recheck", "must not be negative: expected a duration such as \"1d\", or 0 for never")
	}
	if pl.ContentSecret.IsSet() && pl.ContentSecretFile != "" {
		add("preloading.content_secret_file", "content_secret and content_secret_file are exclusive: set one")
	}
	seen := map[string]int{}
	for i, e := range c.Preload {
		key := fmt.Sprintf("preload[%d]", i)
		u, err := url.Parse(e.URL)
		switch {
		case e.URL == "":
			add(key+".url", "missing: expected the URL of a file on a BranchCache-enabled server, e.g. \"http://wsus.example.org/Content/install.wim\"")
		case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
			add(key+".url", "%q is not an http:// or https:// URL", e.URL)
		case u.User != nil:
			add(key+".url", "credentials in the URL are not supported")
		}
		if err := checkVersions(e.Versions); err != "" {
			add(key+".versions", "%s", err)
		}
		if e.Limit < 0 {
			add(key+".limit", "must not be negative")
		}
		versions := e.Versions
		if len(versions) == 0 {
			versions = pl.Versions
		}
		id := fmt.Sprint(e.URL, versions)
		if j, dup := seen[id]; dup && e.URL != "" {
			add(key+".url", "%s is already preloaded by preload[%d]", e.URL, j)
		}
		seen[id] = i
	}
	return p
}

// checkVersions accepts content information versions 1 and 2, once each;
// it returns what is wrong, or "".
func checkVersions(v []int) string {
	for i, x := range v {
		if x != 1 && x != 2 {
			return fmt.Sprintf("version %d: expected 1 (Windows 7 clients) and/or 2 (Windows 8 and later), e.g. [2] or [1, 2]", x)
		}
		for _, y := range v[:i] {
			if x == y {
				return fmt.Sprintf("version %d is listed twice", x)
			}
		}
	}
	return ""
}

func validateInterfaces(ifaces []Interface) []Problem {
	var p []Problem
	add := func(key, format string, args ...any) { p = append(p, problemf(key, format, args...)) }
	seen := map[string]int{}
	for i, ifc := range ifaces {
		key := fmt.Sprintf("interface[%d]", i)
		if err := checkLinkName(ifc.Name); err != nil {
			add(key+".name", "%v", err)
			continue
		}
		if ifc.VLAN != 0 && (ifc.VLAN < 1 || ifc.VLAN > 4094) {
			add(key+".vlan", "%d is out of range: expected a VLAN ID from 1 to 4094 (or 0 for the untagged interface)", ifc.VLAN)
		} else if len(ifc.LinkName()) > maxLinkNameLen {
			add(key+".vlan", "the VLAN interface name %q is longer than %d characters", ifc.LinkName(), maxLinkNameLen)
		}
		if j, dup := seen[ifc.LinkName()]; dup {
			add(key, "interface %q is already configured by interface[%d]", ifc.LinkName(), j)
		}
		seen[ifc.LinkName()] = i
		for j, a := range ifc.Address {
			ip := a.Addr()
			switch {
			case ip.IsUnspecified() || ip.IsMulticast() || ip.IsLoopback():
				add(fmt.Sprintf("%s.address[%d]", key, j), "%s cannot be an interface address: expected a unicast address", a)
			case ip.Is4() && a.Bits() == 32:
				// A /32 is legitimate (point-to-point), nothing to check.
			case a.Bits() == 0:
				add(fmt.Sprintf("%s.address[%d]", key, j), "%s has prefix length 0: expected the subnet's length, e.g. /24", a)
			}
		}
		var gw4, gw6 int
		for j, g := range ifc.Gateway {
			k := fmt.Sprintf("%s.gateway[%d]", key, j)
			switch {
			case !g.IsValid() || g.IsUnspecified() || g.IsMulticast():
				add(k, "%s cannot be a gateway: expected a unicast address", g)
			case g.Is4():
				gw4++
				if gw4 > 1 {
					add(k, "a second IPv4 gateway: expected at most one IPv4 and one IPv6 gateway")
				} else if !hasStatic4(ifc) {
					add(k, "an IPv4 gateway needs a static IPv4 address on this interface (DHCP brings its own router)")
				}
			default:
				gw6++
				if gw6 > 1 {
					add(k, "a second IPv6 gateway: expected at most one IPv4 and one IPv6 gateway")
				}
			}
		}
		for j, d := range ifc.DNS {
			if !d.IsValid() || d.IsUnspecified() || d.IsMulticast() {
				add(fmt.Sprintf("%s.dns[%d]", key, j), "%s cannot be a DNS server: expected a unicast address", d)
			}
		}
		if ifc.Role == "" {
			add(key+".role", `must be "lan" or "wan"`)
		}
	}
	return p
}

func hasStatic4(ifc Interface) bool {
	for _, a := range ifc.Address {
		if a.Addr().Is4() {
			return true
		}
	}
	return false
}

func validateLeader(l *Leader) []Problem {
	var p []Problem
	add := func(key, format string, args ...any) { p = append(p, problemf(key, format, args...)) }
	seen := map[string]int{}
	for i, peer := range l.Peers {
		key := fmt.Sprintf("leader.peer[%d]", i)
		if peer.Address == "" {
			add(key+".address", "missing: expected the peer leader's host name or IP address")
		} else if err := checkHostPort(peer.Address); err != nil {
			add(key+".address", "%v", err)
		} else if j, dup := seen[peer.Address]; dup {
			add(key+".address", "%s is already listed as leader.peer[%d]", peer.Address, j)
		}
		seen[peer.Address] = i
		if len(peer.Name) > 63 || strings.ContainsFunc(peer.Name, func(r rune) bool { return r < ' ' || r == 0x7f }) {
			add(key+".name", "expected a short printable name (at most 63 characters)")
		}
	}
	if l.Secret.IsSet() && l.SecretFile != "" {
		add("leader.secret_file", "secret and secret_file are exclusive: set one")
	}
	if l.Secret.IsSet() && len(l.Secret.Reveal()) < minSecretLen {
		add("leader.secret", "too short (%d characters): expected at least %d", len(l.Secret.Reveal()), minSecretLen)
	}
	if (len(l.Peers) > 0 || l.Forward) && !l.Secret.IsSet() && l.SecretFile == "" {
		add("leader.secret", "missing: peer leaders authenticate with a shared secret; set secret or secret_file")
	}
	if l.Forward && len(l.Peers) == 0 {
		add("leader.forward", "forward = true needs at least one [[leader.peer]] to forward to")
	}
	return p
}

// checkPortClashes reports two services configured on the same TCP port
// and host (an empty host, all addresses, clashes with every host).
func checkPortClashes(c *Config) []Problem {
	var p []Problem
	type listener struct {
		key  string
		addr ListenAddr
	}
	var seen []listener
	for _, l := range []listener{
		{"hosted_cache.http_listen", c.HostedCache.HTTPListen},
		{"hosted_cache.https_listen", c.HostedCache.HTTPSListen},
		{"peer.listen", c.Peer.Listen},
		{"leader.relay_listen", c.Leader.RelayListen},
		{"api.listen", c.API.Listen},
	} {
		if l.addr == "" {
			continue
		}
		host, port, err := SplitListenAddr(string(l.addr))
		if err != nil {
			continue
		}
		for _, s := range seen {
			h2, p2, _ := SplitListenAddr(string(s.addr))
			if port == p2 && (host == "" || h2 == "" || host == h2) {
				p = append(p, problemf(l.key, "port %d is already used by %s", port, s.key))
			}
		}
		seen = append(seen, l)
	}
	return p
}

// checkHostname accepts RFC 1123 host names: dot-separated labels of
// letters, digits and inner hyphens, 63 characters each, 253 in all.
func checkHostname(h string) error {
	if h == "" || len(h) > 253 {
		return fmt.Errorf("invalid host name %q: expected 1 to 253 characters", h)
	}
	for _, label := range strings.Split(h, ".") {
		if len(label) == 0 || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' ||
			strings.ContainsFunc(label, func(r rune) bool {
				return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-')
			}) {
			return fmt.Errorf("invalid host name %q: expected letters, digits and hyphens (labels of at most 63 characters, not starting or ending with a hyphen)", h)
		}
	}
	return nil
}

// checkHostPort accepts a host name or IP address, optionally with a port.
func checkHostPort(s string) error {
	host := s
	if h, port, err := splitOptionalPort(s); err == nil {
		host = h
		if port != "" {
			if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
				return fmt.Errorf("invalid port in %q: expected 1 to 65535", s)
			}
		}
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return nil
	}
	if err := checkHostname(host); err != nil {
		return fmt.Errorf("invalid address %q: expected a host name or an IP address, optionally with :port", s)
	}
	return nil
}

// splitOptionalPort splits "host:port", "[v6]:port", "host" and bare IPv6
// addresses.
func splitOptionalPort(s string) (host, port string, err error) {
	if strings.HasPrefix(s, "[") {
		end := strings.Index(s, "]")
		if end < 0 {
			return "", "", fmt.Errorf("missing ]")
		}
		host, rest := s[1:end], s[end+1:]
		if rest == "" {
			return host, "", nil
		}
		if !strings.HasPrefix(rest, ":") {
			return "", "", fmt.Errorf("junk after ]")
		}
		return host, rest[1:], nil
	}
	if strings.Count(s, ":") == 1 {
		h, p, _ := strings.Cut(s, ":")
		return h, p, nil
	}
	return s, "", nil
}

// checkLinkName accepts Linux interface names: 1 to 15 bytes, no slash,
// colon or white space, not "." or "..".
func checkLinkName(name string) error {
	if name == "" {
		return fmt.Errorf("missing: expected a network interface name such as \"eth0\"")
	}
	if len(name) > maxLinkNameLen || name == "." || name == ".." ||
		strings.ContainsFunc(name, func(r rune) bool { return r == '/' || r == ':' || r <= ' ' || r == 0x7f }) {
		return fmt.Errorf("invalid interface name %q: expected at most %d characters, no '/', ':' or spaces", name, maxLinkNameLen)
	}
	return nil
}
