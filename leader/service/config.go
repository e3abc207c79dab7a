package service

import (
	"fmt"
	"log/slog"

	"github.com/outpost-appliance/outpost/cache/store"
	"github.com/outpost-appliance/outpost/firmware/config"
	"github.com/outpost-appliance/outpost/leader/forward"
)

// FromConfig builds the leader's configuration from outpost.toml: the LAN
// interfaces ([[interface]] role "lan"), the peer port and reply delay
// ([peer]), the relay, peers and secret ([leader]) and the per-source
// probe rate and the XDP fast path's mode ([xdp]; the responder enforces
// the rate too, for what the fast path passes or when it is off).
func FromConfig(c *config.Config, st func() *store.Store, log *slog.Logger) (Config, error) {
	cfg := Config{
		PeerPort:            uint16(c.Peer.Listen.Port()),
		RelayListen:         string(c.Leader.RelayListen),
		ReplyDelayMin:       c.Peer.ReplyDelay.Min,
		ReplyDelayMax:       c.Peer.ReplyDelay.Max,
		ProbeRatePerSource:  c.XDP.ProbeRatePerSource,
		ProbeBurstPerSource: c.XDP.ProbeBurstPerSource,
		XDP:                 string(c.XDP.Mode),
		Forward:             c.Leader.Forward,
		Store:               st,
		Logger:              log,
	}
	for _, ifc := range c.Interfaces {
		if ifc.Role == config.RoleLAN {
			cfg.Interfaces = append(cfg.Interfaces, ifc.LinkName())
		}
	}
	if len(c.Interfaces) > 0 && len(cfg.Interfaces) == 0 {
		// Only WAN interfaces: nothing to lead. An impossible name keeps
		// the responder from taking every interface.
		cfg.Interfaces = []string{""}
	}
	for _, p := range c.Leader.Peers {
		cfg.Peers = append(cfg.Peers, forward.PeerConfig{Address: p.Address, Name: p.Name})
	}
	if len(cfg.Peers) > 0 {
		secret, err := c.Leader.ResolveSecret()
		if err != nil {
			return cfg, fmt.Errorf("leader: secret: %w", err)
		}
		if !secret.IsSet() {
			return cfg, fmt.Errorf("leader: peer leaders are configured but no secret")
		}
		cfg.Secret = []byte(secret.Reveal())
	}
	return cfg, nil
}
