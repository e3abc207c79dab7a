package config

import (
	"bytes"

	"github.com/pelletier/go-toml/v2"
)

// Effective renders the configuration as TOML, the way `outpost config
// check` prints it: every key with its effective value, secrets shown as
// "(redacted)" (Secret never prints its value), durations and sizes in
// their written form. JSON (for the API) redacts the same way.
func (c *Config) Effective() ([]byte, error) {
	var buf bytes.Buffer
	enc := toml.NewEncoder(&buf).SetIndentTables(false)
	if err := enc.Encode(c); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
