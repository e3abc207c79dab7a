package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestDefaultFileParsesToDefault(t *testing.T) {
	got, err := Parse([]byte(DefaultFile()), "default.toml", "")
	if err != nil {
		t.Fatalf("the default file does not parse: %v", err)
	}
	if want := Default(); !reflect.DeepEqual(got, want) {
		t.Errorf("the default file and Default() differ:\nfile:    %+v\nDefault: %+v", got, want)
	}
}

func TestExampleFileIsDefaultFile(t *testing.T) {
	example, err := os.ReadFile("../outpost.example.toml")
	if err != nil {
		t.Fatal(err)
	}
	if string(example) != DefaultFile() {
		t.Errorf("firmware/outpost.example.toml differs from `outpost config default`; regenerate it with:\n  go run ./firmware/cmd/outpost config default > firmware/outpost.example.toml")
	}
}

// Every key of the schema is documented in the default file, set to its
// default or shown commented out.
func TestDefaultFileMentionsEveryKey(t *testing.T) {
	var walk func(prefix string, typ reflect.Type)
	walk = func(prefix string, typ reflect.Type) {
		for _, key := range keysOf(typ) {
			f, _ := fieldByKey(typ, key)
			ft := f.Type
			if ft.Kind() == reflect.Slice && isTable(ft.Elem()) {
				header := regexp.MustCompile(`(?m)^#? ?\[\[` + regexp.QuoteMeta(prefix+key) + `\]\]`)
				if !header.MatchString(DefaultFile()) {
					t.Errorf("the default file does not show [[%s%s]]", prefix, key)
				}
				walk(prefix+key+".", ft.Elem())
				continue
			}
			if isTable(ft) {
				walk(prefix+key+".", ft)
				continue
			}
			line := regexp.MustCompile(`(?m)^#? ?` + regexp.QuoteMeta(key) + ` += `)
			if !line.MatchString(DefaultFile()) {
				t.Errorf("the default file does not document %s%s", prefix, key)
			}
		}
	}
	walk("", reflect.TypeFor[Config]())
}

// Each row sets keys to valid values and checks what was decoded.
func TestValidValues(t *testing.T) {
	tests := []struct {
		name  string
		doc   string
		check func(*Config) bool
	}{
		{"hostname", `hostname = "branch-07.example.org"`, func(c *Config) bool { return c.Hostname == "branch-07.example.org" }},
		{"interface with only a name", "[[interface]]\nname = \"eth0\"", func(c *Config) bool {
			return len(c.Interfaces) == 1 && c.Interfaces[0].Name == "eth0" && c.Interfaces[0].Role == RoleLAN && !c.Interfaces[0].Static()
		}},
		{"interface static", "[[interface]]\nname = \"eth0\"\naddress = [\"192.168.1.10/24\", \"2001:db8::10/64\"]\ngateway = [\"192.168.1.1\", \"fe80::1\"]\ndns = [\"192.168.1.1\"]", func(c *Config) bool {
			i := c.Interfaces[0]
			return len(i.Address) == 2 && i.Address[1].String() == "2001:db8::10/64" && i.Gateway[0].String() == "192.168.1.1" && i.DNS[0].String() == "192.168.1.1"
		}},
		{"interface dhcp wan", "[[interface]]\nname = \"eth1\"\ndhcp = true\nrole = \"wan\"", func(c *Config) bool { return c.Interfaces[0].DHCP && c.Interfaces[0].Role == RoleWAN }},
		{"vlans", "[[interface]]\nname = \"eth0\"\nvlan = 1\n[[interface]]\nname = \"eth0\"\nvlan = 4094", func(c *Config) bool {
			return c.Interfaces[0].LinkName() == "eth0.1" && c.Interfaces[1].LinkName() == "eth0.4094"
		}},
		{"inline interface", `interface = [{name = "eth0", dhcp = true}]`, func(c *Config) bool { return c.Interfaces[0].DHCP && c.Interfaces[0].Role == RoleLAN }},
		{"ntp", "[time]\nntp = [\"ntp.example.org\", \"192.168.1.1:123\", \"[2001:db8::1]:123\"]", func(c *Config) bool { return len(c.Time.NTP) == 3 }},
		{"ntp off", "[time]\nntp = []", func(c *Config) bool { return len(c.Time.NTP) == 0 }},
		{"cache", "[cache]\ndir = \"/srv/cache\"\nmax_size = \"20GiB\"\nmax_percent = \"90%\"\nmax_age = \"14d\"\nlow_disk_floor = 2.5\nprofile = \"large\"", func(c *Config) bool {
			return c.Cache.Dir == "/srv/cache" && c.Cache.MaxSize == 20<<30 && c.Cache.MaxPercent == 90 &&
				time.Duration(c.Cache.MaxAge) == 14*24*time.Hour && c.Cache.LowDiskFloor == 2.5 && c.Cache.Profile == ProfileLarge
		}},
		{"cache max_size in bytes", "[cache]\nmax_size = 1_073_741_824", func(c *Config) bool { return c.Cache.MaxSize == 1<<30 }},
		{"cache max_age never", "[cache]\nmax_age = 0", func(c *Config) bool { return c.Cache.MaxAge == 0 }},
		{"hosted cache", "[hosted_cache]\nhttp_listen = \"192.168.1.10:8080\"\nhttps_listen = \"\"\nhostname = \"cache.branch.example\"\nmax_uploads = 64", func(c *Config) bool {
			h := c.HostedCache
			return h.HTTPListen == "192.168.1.10:8080" && h.HTTPSListen == "" && h.Hostname == "cache.branch.example" && h.MaxUploads == 64
		}},
		{"peer", "[peer]\nlisten = \"[::]:1338\"\nreply_delay = \"20ms\"", func(c *Config) bool {
			return c.Peer.Listen == "[::]:1338" && c.Peer.ReplyDelay == DelayRange{20 * time.Millisecond, 20 * time.Millisecond}
		}},
		{"leader", "[leader]\nrelay_listen = \":1338\"\nforward = true\nsecret = \"0123456789abcdef\"\n[[leader.peer]]\naddress = \"10.2.0.5\"\nname = \"berlin\"\n[[leader.peer]]\naddress = \"paris.example.org:3704\"", func(c *Config) bool {
			l := c.Leader
			return l.RelayListen == ":1338" && l.Forward && l.Secret.Reveal() == "0123456789abcdef" && len(l.Peers) == 2 && l.Peers[0].Name == "berlin"
		}},
		{"xdp", "[xdp]\nmode = \"generic\"\nprobe_rate_per_source = 0", func(c *Config) bool { return c.XDP.Mode == XDPGeneric && c.XDP.ProbeRatePerSource == 0 }},
		{"xdp burst", "[xdp]\nprobe_burst_per_source = 50", func(c *Config) bool { return c.XDP.ProbeBurstPerSource == 50 && c.XDP.ProbeRatePerSource == 100 }},
		{"api", "[api]\nlisten = \"127.0.0.1:9001\"\ntoken = \"0123456789abcdef\"\nread_only_anonymous = false", func(c *Config) bool {
			return c.API.Listen == "127.0.0.1:9001" && c.API.Token.Reveal() == "0123456789abcdef" && !c.API.ReadOnlyAnonymous
		}},
		{"log", "[log]\nlevel = \"debug\"\nring_size = \"1MiB\"", func(c *Config) bool { return c.Log.Level == LogDebug && c.Log.RingSize == 1<<20 }},
		{"preloading", "[preloading]\nlimit = \"50Mbit/s\"\nversions = [1, 2]\nmax_active = 4\nrecheck = 0\ncontent_secret = \"branch\"", func(c *Config) bool {
			p := c.Preloading
			return p.Limit == 50_000_000 && len(p.Versions) == 2 && p.MaxActive == 4 && p.Recheck == 0 && p.ContentSecret.Reveal() == "branch"
		}},
		{"preload entries", "[[preload]]\nurl = \"http://wsus.example.org/Content/install.wim\"\nwindow = \"22:00-06:00 Europe/Berlin\"\nlimit = \"2.5MB/s\"\nversions = [1]\n[[preload]]\nurl = \"https://iis.example.org/app.msi\"", func(c *Config) bool {
			a, b := c.Preload[0], c.Preload[1]
			return len(c.Preload) == 2 && a.Window.String() == "22:00-06:00 Europe/Berlin" && a.Window.Start == 22*60 && a.Limit == 20_000_000 &&
				len(a.Versions) == 1 && b.URL == "https://iis.example.org/app.msi" && b.Window.IsAlways() && b.Limit == 0 && len(b.Versions) == 0
		}},
		{"preload limit 0", "[[preload]]\nurl = \"http://x.example/f\"\nlimit = 0", func(c *Config) bool { return c.Preload[0].Limit == 0 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.doc), "t.toml", "")
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if !tt.check(c) {
				t.Errorf("decoded %+v", c)
			}
		})
	}
}

// Each row is a document with one mistake: the problem must name the key,
// the line and column, and say what was expected.
func TestInvalidValues(t *testing.T) {
	tests := []struct {
		name      string
		doc       string
		key       string
		line, col int
		message   string // a substring of the message
	}{
		{"unknown top-level key", "hostnme = \"x\"", "hostnme", 1, 1, `unknown key "hostnme": expected one of hostname, interface,`},
		{"unknown key in table", "[cache]\nmax_sise = \"1GiB\"", "cache.max_sise", 2, 1, "expected one of dir, max_size,"},
		{"unknown table", "[caches]\ndir = \"x\"", "caches", 1, 2, `unknown key "caches"`},
		{"unknown key in interface", "[[interface]]\nname = \"eth0\"\n[[interface]]\nname = \"eth1\"\nvlna = 3", "interface[1].vlna", 5, 1, "expected one of name, vlan, address"},
		{"syntax error", "[cache\n", "", 1, 7, "expected ']'"},
		{"hostname wrong type", "hostname = 7", "hostname", 1, 12, "wrong type: got a TOML integer, expected a string"},
		{"hostname invalid", `hostname = "my_box"`, "hostname", 1, 12, "invalid host name"},
		{"interface without name", "[[interface]]\ndhcp = true", "interface[0].name", 1, 3, "missing"},
		{"interface name too long", "[[interface]]\nname = \"a-very-long-interface\"", "interface[0].name", 2, 8, "at most 15 characters"},
		{"vlan out of range", "[[interface]]\nname = \"eth0\"\nvlan = 4095", "interface[0].vlan", 3, 8, "expected a VLAN ID from 1 to 4094"},
		{"vlan negative", "[[interface]]\nname = \"eth0\"\nvlan = -1", "interface[0].vlan", 3, 8, "expected a VLAN ID from 1 to 4094"},
		{"vlan wrong type", "[[interface]]\nname = \"eth0\"\nvlan = \"10\"", "interface[0].vlan", 3, 8, "expected an integer"},
		{"vlan name too long", "[[interface]]\nname = \"enp0s31f6abc\"\nvlan = 4094", "interface[0].vlan", 3, 8, "longer than 15"},
		{"duplicate interface", "[[interface]]\nname = \"eth0\"\n[[interface]]\nname = \"eth0\"", "interface[1]", 3, 3, "already configured by interface[0]"},
		{"address without prefix", "[[interface]]\nname = \"eth0\"\naddress = [\"192.168.1.10\"]", "interface[0].address[0]", 3, 12, "expected an IP address with its prefix length"},
		{"address multicast", "[[interface]]\nname = \"eth0\"\naddress = [\"10.0.0.1/8\", \"224.0.0.5/4\"]", "interface[0].address[1]", 3, 26, "expected a unicast address"},
		{"address not a list", "[[interface]]\nname = \"eth0\"\naddress = \"10.0.0.1/8\"", "interface[0].address", 3, 11, "expected a list"},
		{"gateway without static v4", "[[interface]]\nname = \"eth0\"\ndhcp = true\ngateway = [\"10.0.0.1\"]", "interface[0].gateway[0]", 4, 12, "needs a static IPv4 address"},
		{"two v4 gateways", "[[interface]]\nname = \"eth0\"\naddress = [\"10.0.0.2/24\"]\ngateway = [\"10.0.0.1\", \"10.0.0.254\"]", "interface[0].gateway[1]", 4, 24, "at most one IPv4"},
		{"dns invalid", "[[interface]]\nname = \"eth0\"\ndns = [\"dns.example\"]", "interface[0].dns[0]", 3, 8, "invalid IP address"},
		{"dhcp wrong type", "[[interface]]\nname = \"eth0\"\ndhcp = \"yes\"", "interface[0].dhcp", 3, 8, "expected true or false"},
		{"role invalid", "[[interface]]\nname = \"eth0\"\nrole = \"dmz\"", "interface[0].role", 3, 8, `expected one of "lan" or "wan"`},
		{"ntp not a list", "[time]\nntp = \"pool.ntp.org\"", "time.ntp", 2, 7, "expected a list"},
		{"ntp bad host", "[time]\nntp = [\"bad host\"]", "time.ntp[0]", 2, 8, "expected a host name or an IP address"},
		{"cache dir empty", "[cache]\ndir = \"\"", "cache.dir", 2, 7, "must not be empty"},
		{"size without unit", "[cache]\nmax_size = 20", "cache.max_size", 2, 12, "did you forget the unit"},
		{"size bad unit", "[cache]\nmax_size = \"20GB!\"", "cache.max_size", 2, 12, `invalid size "20GB!"`},
		{"size wrong type", "[cache]\nmax_size = true", "cache.max_size", 2, 12, "wrong type: got a TOML boolean, expected a size"},
		{"percent over 100", "[cache]\nmax_percent = 120", "cache.max_percent", 2, 15, "expected more than 0% and at most 100%"},
		{"percent zero", "[cache]\nmax_percent = \"0%\"", "cache.max_percent", 2, 15, "out of range"},
		{"percent text", "[cache]\nmax_percent = \"most\"", "cache.max_percent", 2, 15, "invalid percentage"},
		{"duration without unit", "[cache]\nmax_age = 28", "cache.max_age", 2, 11, `invalid duration "28"`},
		{"duration bad unit", "[cache]\nmax_age = \"28 days\"", "cache.max_age", 2, 11, "expected a number and a unit"},
		{"floor too high", "[cache]\nlow_disk_floor = 60", "cache.low_disk_floor", 2, 18, "expected 0% to 50%"},
		{"profile invalid", "[cache]\nprofile = \"medium\"", "cache.profile", 2, 11, `expected one of "small" or "large"`},
		{"listen without port", "[hosted_cache]\nhttp_listen = \"1339\"", "hosted_cache.http_listen", 2, 15, "expected [host]:port"},
		{"listen port out of range", "[hosted_cache]\nhttps_listen = \":70000\"", "hosted_cache.https_listen", 2, 16, "from 1 to 65535"},
		{"listen host name", "[peer]\nlisten = \"example.org:1337\"", "peer.listen", 2, 10, "the host must be empty"},
		{"tls cert without key", "[hosted_cache]\ntls_cert = \"/etc/c.pem\"", "hosted_cache.tls_key", 1, 2, "set both"},
		{"max_uploads zero", "[hosted_cache]\nmax_uploads = 0", "hosted_cache.max_uploads", 2, 15, "expected 1 to 65536"},
		{"port clash", "[api]\nlisten = \":1339\"", "api.listen", 2, 10, "port 1339 is already used by hosted_cache.http_listen"},
		{"reply delay reversed", "[peer]\nreply_delay = \"65ms-1ms\"", "peer.reply_delay", 2, 15, "0 <= MIN <= MAX"},
		{"reply delay text", "[peer]\nreply_delay = \"soon\"", "peer.reply_delay", 2, 15, "expected MIN-MAX"},
		{"peers without secret", "[[leader.peer]]\naddress = \"10.2.0.5\"", "leader.secret", 1, 3, "shared secret"},
		{"forward without peers", "[leader]\nforward = true\nsecret = \"0123456789abcdef\"", "leader.forward", 2, 11, "at least one [[leader.peer]]"},
		{"secret too short", "[leader]\nsecret = \"short\"", "leader.secret", 2, 10, "expected at least 16"},
		{"secret and file", "[leader]\nsecret = \"0123456789abcdef\"\nsecret_file = \"/x\"", "leader.secret_file", 3, 15, "exclusive"},
		{"peer without address", "[leader]\nsecret = \"0123456789abcdef\"\n[[leader.peer]]\nname = \"x\"", "leader.peer[0].address", 3, 3, "missing"},
		{"peer bad port", "[leader]\nsecret = \"0123456789abcdef\"\n[[leader.peer]]\naddress = \"10.0.0.1:99999\"", "leader.peer[0].address", 4, 11, "expected 1 to 65535"},
		{"xdp mode invalid", "[xdp]\nmode = \"fast\"", "xdp.mode", 2, 8, `"native", "generic", "off" or "auto"`},
		{"xdp rate negative", "[xdp]\nprobe_rate_per_source = -1", "xdp.probe_rate_per_source", 2, 25, "expected 0 (no limit)"},
		{"xdp burst too large", "[xdp]\nprobe_burst_per_source = 2000000", "xdp.probe_burst_per_source", 2, 26, "expected 0 (twice the rate)"},
		{"api listen off", "[api]\nlisten = \"\"", "api.listen", 2, 10, "must not be empty"},
		{"api token short", "[api]\ntoken = \"abc\"", "api.token", 2, 9, "expected at least 16"},
		{"api anonymous wrong type", "[api]\nread_only_anonymous = 1", "api.read_only_anonymous", 2, 23, "expected true or false"},
		{"log level invalid", "[log]\nlevel = \"verbose\"", "log.level", 2, 9, `"debug", "info", "warn" or "error"`},
		{"ring too small", "[log]\nring_size = \"1KiB\"", "log.ring_size", 2, 13, "out of range"},
		{"preload without url", "[[preload]]\nwindow = \"01:00-05:00\"", "preload[0].url", 1, 3, "missing"},
		{"preload url not http", "[[preload]]\nurl = \"ftp://x.example/f\"", "preload[0].url", 2, 7, "is not an http:// or https:// URL"},
		{"preload url credentials", "[[preload]]\nurl = \"http://u:p@x.example/f\"", "preload[0].url", 2, 7, "credentials"},
		{"preload window bad", "[[preload]]\nurl = \"http://x.example/f\"\nwindow = \"1am-5am\"", "preload[0].window", 3, 10, `invalid window "1am-5am"`},
		{"preload window empty span", "[[preload]]\nurl = \"http://x.example/f\"\nwindow = \"03:00-03:00\"", "preload[0].window", 3, 10, "the same"},
		{"preload window zone", "[[preload]]\nurl = \"http://x.example/f\"\nwindow = \"01:00-05:00 Mars/Base\"", "preload[0].window", 3, 10, "unknown time zone"},
		{"preload limit without unit", "[[preload]]\nurl = \"http://x.example/f\"\nlimit = 20", "preload[0].limit", 3, 9, `invalid bandwidth "20"`},
		{"preload limit wrong type", "[[preload]]\nurl = \"http://x.example/f\"\nlimit = true", "preload[0].limit", 3, 9, "expected a bandwidth"},
		{"preload version 3", "[[preload]]\nurl = \"http://x.example/f\"\nversions = [3]", "preload[0].versions", 3, 1, "expected 1 (Windows 7 clients) and/or 2"},
		{"preload duplicate", "[[preload]]\nurl = \"http://x.example/f\"\n[[preload]]\nurl = \"http://x.example/f\"", "preload[1].url", 4, 7, "already preloaded by preload[0]"},
		{"preload unknown key", "[[preload]]\nurl = \"http://x.example/f\"\nspeed = 1", "preload[0].speed", 3, 1, "expected one of url, window, limit, versions"},
		{"preloading versions empty", "[preloading]\nversions = []", "preloading.versions", 2, 1, "must not be empty"},
		{"preloading versions twice", "[preloading]\nversions = [2, 2]", "preloading.versions", 2, 1, "listed twice"},
		{"preloading max_active", "[preloading]\nmax_active = 0", "preloading.max_active", 2, 14, "expected 1 to 16"},
		{"preloading limit text", "[preloading]\nlimit = \"fast\"", "preloading.limit", 2, 9, "expected a number and a unit"},
		{"content secret and file", "[preloading]\ncontent_secret = \"x\"\ncontent_secret_file = \"/x\"", "preloading.content_secret_file", 3, 23, "exclusive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.doc), "t.toml", "")
			var cerr *Error
			if !errors.As(err, &cerr) {
				t.Fatalf("want a *config.Error, got %v", err)
			}
			p := cerr.Problems[0]
			if p.Key != tt.key || p.Line != tt.line || p.Column != tt.col || !strings.Contains(p.Message, tt.message) || p.Source != "t.toml" {
				t.Errorf("got  %s (key %q, %d:%d)\nwant key %q at %d:%d, message containing %q", p, p.Key, p.Line, p.Column, tt.key, tt.line, tt.col, tt.message)
			}
		})
	}
}

func TestAllProblemsReportedAtOnce(t *testing.T) {
	doc := "[cache]\nmax_percent = 0\nmax_age = \"x\"\n[log]\nlevel = \"loud\"\n"
	_, err := Parse([]byte(doc), "t.toml", "")
	var cerr *Error
	if !errors.As(err, &cerr) || len(cerr.Problems) != 2 { // the text values are checked first, together
		t.Fatalf("got %v", err)
	}
	if !strings.Contains(err.Error(), "t.toml:3:11: cache.max_age:") || !strings.Contains(err.Error(), "t.toml:5:9: log.level:") {
		t.Errorf("error text: %v", err)
	}
}

func TestSizes(t *testing.T) {
	tests := []struct {
		in   string
		want Size
		text string
	}{
		{"20GiB", 20 << 30, "20GiB"}, {"512MiB", 512 << 20, "512MiB"}, {"1.5GiB", 3 << 29, "1536MiB"},
		{"4096", 4096, "4KiB"}, {"100", 100, "100B"}, {"0", 0, "0"}, {"10gib", 10 << 30, "10GiB"},
		{"1GB", 1e9, "1000000000B"}, {"2 TiB", 2 << 40, "2TiB"}, {"64KiB", 64 << 10, "64KiB"},
	}
	for _, tt := range tests {
		got, err := ParseSize(tt.in)
		if err != nil || got != tt.want || got.String() != tt.text {
			t.Errorf("ParseSize(%q) = %d (%s), %v; want %d (%s)", tt.in, got, got, err, tt.want, tt.text)
		}
	}
	for _, bad := range []string{"", "GiB", "20XB", "-1GiB", "1.5B", "1e3"} {
		if _, err := ParseSize(bad); err == nil {
			t.Errorf("ParseSize(%q) accepted", bad)
		}
	}
}

func TestDurations(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		text string
	}{
		{"28d", 28 * 24 * time.Hour, "28d"}, {"15s", 15 * time.Second, "15s"}, {"1d12h", 36 * time.Hour, "1d12h"},
		{"1.5h", 90 * time.Minute, "1h30m"}, {"500ms", 500 * time.Millisecond, "500ms"}, {"2w", 14 * 24 * time.Hour, "14d"},
		{"0", 0, "0s"}, {"1m30s", 90 * time.Second, "1m30s"},
	}
	for _, tt := range tests {
		got, err := ParseDuration(tt.in)
		if err != nil || got != tt.want || FormatDuration(got) != tt.text {
			t.Errorf("ParseDuration(%q) = %v (%s), %v; want %v (%s)", tt.in, got, FormatDuration(got), err, tt.want, tt.text)
		}
	}
	for _, bad := range []string{"", "28", "d", "5 days", "-1s", "1y"} {
		if _, err := ParseDuration(bad); err == nil {
			t.Errorf("ParseDuration(%q) accepted", bad)
		}
	}
}

func TestKernelOverrides(t *testing.T) {
	// As u-root's cmdline package parses /proc/cmdline: other arguments
	// are ignored, and dashed keys are stored twice.
	args := map[string]string{
		"console":                      "ttyS0",
		"quiet":                        "1",
		"outpost.cache.max_size":       "10GiB",
		"outpost.log.level":            "debug",
		"outpost.interface.0.name":     "eth0",
		"outpost.interface.0.dhcp":     "true",
		"outpost.interface.1.name":     "eth1",
		"outpost.interface[1].address": "10.0.2.15/24,10.0.3.15/24",
		"outpost.time.ntp":             "",
		"outpost.api.token":            "0123456789abcdef",
	}
	overrides := KernelOverrides(args)
	if len(overrides) != 8 {
		t.Fatalf("got %d overrides: %+v", len(overrides), overrides)
	}
	c, err := Parse([]byte("[cache]\nmax_size = \"20GiB\"\n"), "t.toml", "", overrides...)
	if err != nil {
		t.Fatal(err)
	}
	if c.Cache.MaxSize != 10<<30 || c.Log.Level != LogDebug || len(c.Time.NTP) != 0 || c.API.Token.Reveal() != "0123456789abcdef" {
		t.Errorf("overrides not applied: %+v", c)
	}
	if len(c.Interfaces) != 2 || !c.Interfaces[0].DHCP || c.Interfaces[1].Name != "eth1" || len(c.Interfaces[1].Address) != 2 || c.Interfaces[1].Role != RoleLAN {
		t.Errorf("interfaces: %+v", c.Interfaces)
	}
}

func TestOverrideProblems(t *testing.T) {
	tests := []struct {
		override, key, message string
	}{
		{"cache.max_size=10XB", "cache.max_size", `invalid size "10XB"`},
		{"cache.nope=1", "cache.nope", `unknown key "nope"`},
		{"interface.3.name=eth0", "interface.3.name", "needs an entry index from 0 to 0"},
		{"cache=1", "cache", "is a table"},
		{"interface.0.vlan=5000", "interface[0].vlan", "expected a VLAN ID"},
		{"xdp.probe_rate_per_source=many", "xdp.probe_rate_per_source", "expected an integer"},
	}
	for _, tt := range tests {
		o, err := ParseOverride(tt.override, SourceFlag)
		if err != nil {
			t.Fatal(err)
		}
		extra := []Override{}
		if strings.HasPrefix(tt.override, "interface.0.vlan") {
			extra = append(extra, Override{Key: "interface.0.name", Value: "eth0", Source: SourceFlag})
		}
		_, err = Parse(nil, "t.toml", "", append(extra, o)...)
		var cerr *Error
		if !errors.As(err, &cerr) {
			t.Fatalf("%s: want an error, got %v", tt.override, err)
		}
		p := cerr.Problems[0]
		if p.Source != SourceFlag || p.Key != tt.key || p.Line != 0 || !strings.Contains(p.Message, tt.message) {
			t.Errorf("%s: got %s (key %q)", tt.override, p, p.Key)
		}
	}
	if _, err := ParseOverride("novalue", SourceFlag); err == nil {
		t.Error("ParseOverride accepted a flag without '='")
	}
}

func TestLoadOrSafe(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "outpost.toml")
	if err := os.WriteFile(bad, []byte("[cache]\nmax_percent = 300\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	level := Override{Key: "log.level", Value: "debug", Source: SourceKernel}
	cfg, err := LoadOrSafe(bad, level)
	if err == nil || !strings.Contains(err.Error(), "outpost.toml:2:15: cache.max_percent") {
		t.Fatalf("want the file's error kept, got %v", err)
	}
	want := Default()
	want.Log.Level = LogDebug
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("safe config = %+v, want defaults with the override", cfg)
	}

	// A bad override on top of a bad file: plain defaults.
	cfg, err = LoadOrSafe(bad, Override{Key: "log.level", Value: "loud", Source: SourceKernel})
	if err == nil || !reflect.DeepEqual(cfg, Default()) {
		t.Errorf("got %+v, %v", cfg, err)
	}

	// A missing file given explicitly is an error, with safe defaults.
	cfg, err = LoadOrSafe(filepath.Join(dir, "missing.toml"))
	if err == nil || !strings.Contains(err.Error(), "cannot read the configuration") || cfg == nil {
		t.Errorf("got %v, %v", cfg, err)
	}

	// No file at all: defaults and overrides, no error.
	cfg, err = LoadOrSafe("", level)
	if err != nil || cfg.Log.Level != LogDebug {
		t.Errorf("got %+v, %v", cfg, err)
	}
}

func TestSecretFilesAndRedaction(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "leader.secret"), []byte("a-long-shared-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "short.token"), []byte("abc\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "outpost.toml")
	doc := "[leader]\nsecret_file = \"leader.secret\"\n[[leader.peer]]\naddress = \"10.2.0.5\"\n[api]\ntoken = \"api-token-0123456789\"\n"
	if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	s, err := c.Leader.ResolveSecret()
	if err != nil || s.Reveal() != "a-long-shared-secret" {
		t.Errorf("secret from file = %q, %v", s.Reveal(), err)
	}

	text, err := c.Effective()
	if err != nil {
		t.Fatal(err)
	}
	js, _ := json.Marshal(c)
	var logged bytes.Buffer
	slog.New(slog.NewTextHandler(&logged, nil)).Info("config", "token", c.API.Token, "api", c.API)
	for what, out := range map[string]string{"TOML": string(text), "JSON": string(js), "log": logged.String()} {
		if strings.Contains(out, "api-token-0123456789") || !strings.Contains(out, "(redacted)") {
			t.Errorf("%s output leaks or does not redact the token:\n%s", what, out)
		}
	}
	if !strings.Contains(string(text), `secret_file = '`+filepath.Join(dir, "leader.secret")+`'`) {
		t.Errorf("secret_file not resolved against the file's directory:\n%s", text)
	}

	// The effective configuration is itself a valid configuration.
	if _, err := Parse(bytes.ReplaceAll(text, []byte("'(redacted)'"), []byte("'api-token-0123456789'")), "effective", ""); err != nil {
		t.Errorf("the effective configuration does not parse: %v\n%s", err, text)
	}

	// A token file that is missing or too short.
	for file, msg := range map[string]string{"missing.token": "cannot read", "short.token": "expected at least 16"} {
		doc := "[api]\ntoken_file = \"" + file + "\"\n"
		if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := Load(path)
		if err == nil || !strings.Contains(err.Error(), "outpost.toml:2:14: api.token_file") || !strings.Contains(err.Error(), msg) {
			t.Errorf("%s: got %v", file, err)
		}
	}
}

// Preload entries can be set from the kernel command line or --set, like
// any other key.
func TestPreloadOverrides(t *testing.T) {
	var overrides []Override
	for _, kv := range []string{"preload.0.url=http://wsus.example.org/f.cab", "preload.0.window=01:00-05:00", "preload.0.limit=20Mbit/s",
		"preload.0.versions=1,2", "preloading.limit=100Mbit/s"} {
		o, err := ParseOverride(kv, SourceFlag)
		if err != nil {
			t.Fatal(err)
		}
		overrides = append(overrides, o)
	}
	c, err := Parse(nil, "t.toml", "", overrides...)
	if err != nil {
		t.Fatal(err)
	}
	p := c.Preload[0]
	if len(c.Preload) != 1 || p.URL != "http://wsus.example.org/f.cab" || p.Window.String() != "01:00-05:00" || p.Limit != 20_000_000 ||
		len(p.Versions) != 2 || c.Preloading.Limit != 100_000_000 {
		t.Errorf("overrides not applied: %+v %+v", c.Preload, c.Preloading)
	}
	bad, _ := ParseOverride("preload.0.window=soon", SourceFlag)
	if _, err := Parse(nil, "t.toml", "", bad); err == nil || !strings.Contains(err.Error(), "expected a daily window") {
		t.Errorf("bad window override: %v", err)
	}
	// The effective configuration prints them as written.
	text, err := c.Effective()
	if err != nil || !strings.Contains(string(text), `window = '01:00-05:00'`) || !strings.Contains(string(text), `limit = '20Mbit/s'`) {
		t.Errorf("effective configuration: %v\n%s", err, text)
	}
}

func TestContentSecretFile(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "bc.key"), []byte("branch office\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "empty.key"), []byte("\n"), 0o600)
	c, err := Parse([]byte("[preloading]\ncontent_secret_file = \"bc.key\""), "t.toml", dir)
	if err != nil {
		t.Fatal(err)
	}
	if s, err := c.Preloading.ResolveContentSecret(); err != nil || s.Reveal() != "branch office" {
		t.Errorf("secret %q, %v", s.Reveal(), err)
	}
	for file, msg := range map[string]string{"empty.key": "is empty", "missing.key": "cannot read"} {
		_, err := Parse([]byte("[preloading]\ncontent_secret_file = \""+file+"\""), "t.toml", dir)
		if err == nil || !strings.Contains(err.Error(), "preloading.content_secret_file") || !strings.Contains(err.Error(), msg) {
			t.Errorf("%s: %v", file, err)
		}
	}
}
