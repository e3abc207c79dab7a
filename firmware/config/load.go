package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"

	"github.com/pelletier/go-toml/v2"
)

// Load reads, parses and validates the configuration file at path, then
// applies overrides (kernel command line, --set). Relative file paths in
// the configuration are resolved against the file's directory. A
// configuration with any problem is refused with an *Error listing them
// all; see LoadOrSafe for the fallback the appliance uses.
func Load(path string, overrides ...Override) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &Error{Problems: []Problem{{Source: path, Message: fmt.Sprintf("cannot read the configuration: %v", unwrapPath(err))}}}
	}
	return Parse(data, path, filepath.Dir(path), overrides...)
}

// Parse parses and validates a configuration document. name is used in
// problems; relative file paths are resolved against baseDir.
func Parse(data []byte, name, baseDir string, overrides ...Override) (*Config, error) {
	if problems := checkTextValues(data, name); len(problems) > 0 {
		return nil, &Error{Problems: problems}
	}
	cfg := Default()
	dec := toml.NewDecoder(bytes.NewReader(data)).DisallowUnknownFields()
	if err := dec.Decode(cfg); err != nil {
		return nil, &Error{Problems: decodeProblems(err, data, name)}
	}
	applyEntryDefaults(cfg)

	var problems []Problem
	overridden := map[string]string{}
	for _, o := range overrides {
		if err := o.apply(cfg); err != nil {
			problems = append(problems, Problem{Source: o.Source, Key: o.Key, Message: err.Error()})
			continue
		}
		overridden[normalizeKey(o.Key)] = o.Source
	}
	applyEntryDefaults(cfg)
	resolvePaths(cfg, baseDir)

	idx := indexKeys(data)
	for _, p := range append(Validate(cfg), checkFiles(cfg)...) {
		p.Source = name
		if src, ok := overriddenBy(overridden, p.Key); ok {
			p.Source = src
		} else if pos, ok := idx.locate(p.Key); ok {
			p.Line, p.Column = pos.line, pos.column
		}
		problems = append(problems, p)
	}
	if len(problems) > 0 {
		return nil, &Error{Problems: problems}
	}
	return cfg, nil
}

// LoadOrSafe is how the appliance reads its configuration: a bad
// configuration never bricks the box. If the file (or an override) has a
// problem, it returns the safe defaults — Default with the overrides
// applied, if they are valid on their own, else Default alone — together
// with the error, which the caller shows on the console, in the logs and
// in the status output. An empty path means there is no file: the defaults
// and the overrides apply.
func LoadOrSafe(path string, overrides ...Override) (*Config, error) {
	var cfg *Config
	var err error
	if path == "" {
		cfg, err = Parse(nil, "defaults", "", overrides...)
	} else {
		cfg, err = Load(path, overrides...)
	}
	if err == nil {
		return cfg, nil
	}
	if path != "" {
		if safe, oerr := Parse(nil, "defaults", filepath.Dir(path), overrides...); oerr == nil {
			return safe, err
		}
	}
	return Default(), err
}

// decodeProblems turns go-toml's errors into problems that name the key,
// its line and column, and what was expected.
func decodeProblems(err error, data []byte, name string) []Problem {
	var strict *toml.StrictMissingError
	if errors.As(err, &strict) {
		idx := indexKeys(data)
		problems := make([]Problem, 0, len(strict.Errors))
		for i := range strict.Errors {
			de := &strict.Errors[i]
			line, col := de.Position()
			key := strings.Join(de.Key(), ".")
			if k := idx.keyAt(line, key); k != "" {
				key = k
			}
			problems = append(problems, Problem{Source: name, Line: line, Column: col, Key: key, Message: unknownKeyMessage(de.Key())})
		}
		return problems
	}
	var de *toml.DecodeError
	if errors.As(err, &de) {
		line, col := de.Position()
		key := strings.Join(de.Key(), ".")
		msg := strings.TrimPrefix(de.Error(), "toml: ")
		if t := typeAt(key); t != nil {
			if got, ok := mismatchedKind(msg); ok {
				msg = fmt.Sprintf("wrong type: got %s, expected %s", got, describe(t))
			}
		}
		if k := indexKeys(data).keyAt(line, key); k != "" {
			key = k
		}
		return []Problem{{Source: name, Line: line, Column: col, Key: key, Message: msg}}
	}
	return []Problem{{Source: name, Message: err.Error()}}
}

// mismatchedKind extracts the TOML kind from go-toml's type-mismatch
// message ("cannot decode TOML string into …").
func mismatchedKind(msg string) (string, bool) {
	const marker = "cannot decode TOML "
	i := strings.Index(msg, marker)
	if i < 0 {
		return "", false
	}
	kind, _, _ := strings.Cut(msg[i+len(marker):], " ")
	switch kind {
	case "integer", "float", "boolean", "string", "array", "datetime", "table":
		return "a TOML " + kind, true
	}
	return kind, true
}

// unknownKeyMessage lists the keys that are allowed where an unknown one
// was found.
func unknownKeyMessage(key toml.Key) string {
	parent := strings.Join(key[:len(key)-1], ".")
	var t reflect.Type
	if parent == "" {
		t = reflect.TypeFor[Config]()
	} else {
		t = typeAt(parent)
	}
	for t != nil && t.Kind() == reflect.Slice {
		t = t.Elem()
	}
	if t == nil || !isTable(t) {
		return fmt.Sprintf("unknown key %q", key[len(key)-1])
	}
	where := "at the top level"
	if parent != "" {
		where = "in [" + parent + "]"
	}
	return fmt.Sprintf("unknown key %q: expected one of %s %s", key[len(key)-1], strings.Join(keysOf(t), ", "), where)
}

// resolvePaths makes the files named in the configuration absolute,
// relative to the configuration file's directory (the boot partition on
// the appliance, so an admin can drop a certificate beside outpost.toml).
func resolvePaths(c *Config, baseDir string) {
	for _, p := range []*string{&c.HostedCache.TLSCert, &c.HostedCache.TLSKey, &c.Leader.SecretFile, &c.API.TokenFile, &c.Preloading.ContentSecretFile} {
		if *p != "" && !filepath.IsAbs(*p) && baseDir != "" {
			*p = filepath.Join(baseDir, *p)
		}
	}
}

// checkFiles reports files named in the configuration that cannot be read,
// and secret files that hold too short a secret.
func checkFiles(c *Config) []Problem {
	var problems []Problem
	for _, f := range []struct{ key, path string }{
		{"hosted_cache.tls_cert", c.HostedCache.TLSCert},
		{"hosted_cache.tls_key", c.HostedCache.TLSKey},
	} {
		if f.path == "" {
			continue
		}
		if _, err := os.ReadFile(f.path); err != nil {
			problems = append(problems, problemf(f.key, "cannot read %s: %v", f.path, unwrapPath(err)))
		}
	}
	for _, f := range []struct {
		key, path string
		resolve   func() (Secret, error)
	}{
		{"leader.secret_file", c.Leader.SecretFile, c.Leader.ResolveSecret},
		{"api.token_file", c.API.TokenFile, c.API.ResolveToken},
		{"preloading.content_secret_file", c.Preloading.ContentSecretFile, c.Preloading.ResolveContentSecret},
	} {
		if f.path == "" {
			continue
		}
		s, err := f.resolve()
		switch {
		case err != nil:
			problems = append(problems, problemf(f.key, "cannot read %s: %v", f.path, unwrapPath(err)))
		case f.key == "preloading.content_secret_file":
			// A BranchCache passphrase may be short; empty is a mistake.
			if s.Reveal() == "" {
				problems = append(problems, problemf(f.key, "%s is empty; expected the content servers' BranchCache passphrase", f.path))
			}
		case len(s.Reveal()) < minSecretLen:
			problems = append(problems, problemf(f.key, "%s holds %d characters; expected at least %d", f.path, len(s.Reveal()), minSecretLen))
		}
	}
	return problems
}

func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
