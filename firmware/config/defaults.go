package config

import (
	_ "embed"
	"time"
)

// Default returns the built-in configuration: what a box runs with when
// outpost.toml says nothing, and the safe defaults it falls back to when
// the file is unusable. The commented default file (DefaultFile) states
// the same values; a test keeps the two equal.
func Default() *Config {
	return &Config{
		Hostname: "outpost",
		Time:     Time{NTP: []string{"pool.ntp.org"}},
		Cache: Cache{
			Dir:          "cache",
			MaxPercent:   80,
			MaxAge:       Duration(28 * 24 * time.Hour),
			LowDiskFloor: 5,
			Profile:      ProfileSmall,
		},
		HostedCache: HostedCache{
			HTTPListen:  ":1339",
			HTTPSListen: ":443",
			MaxUploads:  1024,
		},
		Peer: Peer{
			Listen:     ":1337",
			ReplyDelay: DelayRange{Min: time.Millisecond, Max: 65 * time.Millisecond},
		},
		Leader:  Leader{RelayListen: ":81"},
		XDP:     XDP{Mode: XDPAuto, ProbeRatePerSource: 100},
		API:     API{Listen: ":9000", ReadOnlyAnonymous: true},
		Log:     Log{Level: LogInfo, RingSize: 8 << 20},
		Console: Console{Shell: true},
		Preloading: Preloading{
			Versions:  []int{2},
			MaxActive: 2,
			Recheck:   Duration(24 * time.Hour),
		},
	}
}

//go:embed default.toml
var defaultFile string

// DefaultFile is the fully commented default outpost.toml that
// `outpost config default` prints (and firmware/outpost.example.toml is a
// copy of).
func DefaultFile() string { return defaultFile }

// applyEntryDefaults fills the defaults of keys inside array-of-tables
// entries, which TOML decoding creates zeroed.
func applyEntryDefaults(c *Config) {
	for i := range c.Interfaces {
		if c.Interfaces[i].Role == "" {
			c.Interfaces[i].Role = RoleLAN
		}
	}
}
