package config

import (
	"encoding"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
)

// Override sets one configuration value from outside the file: from the
// kernel command line (outpost.cache.max_size=10GiB) for tests and
// recovery, or from `outpost run --set cache.dir=/tmp/c`.
type Override struct {
	// Key is dotted; array entries are addressed by index:
	// "cache.max_size", "interface.0.dhcp" (or "interface[0].dhcp").
	// Addressing the entry just past the end appends one.
	Key   string
	Value string
	// Source names where the override came from, for problems.
	Source string
}

// Sources of overrides.
const (
	SourceKernel = "kernel command line"
	SourceFlag   = "--set"
)

// KernelPrefix starts the kernel command-line arguments that override the
// configuration.
const KernelPrefix = "outpost."

// KernelOverrides picks the outpost.<key>=value arguments out of a parsed
// kernel command line (u-root's cmdline.NewCmdLine().AsMap), sorted by key
// so that array entries are appended in order.
func KernelOverrides(args map[string]string) []Override {
	var out []Override
	for k, v := range args {
		if key, ok := strings.CutPrefix(k, KernelPrefix); ok && key != "" {
			out = append(out, Override{Key: key, Value: v, Source: SourceKernel})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return dedupe(out)
}

// dedupe drops the copies u-root's cmdline map keeps of keys with dashes
// (it stores both "a-b" and "a_b").
func dedupe(in []Override) []Override {
	seen := map[string]bool{}
	var out []Override
	for _, o := range in {
		k := strings.ReplaceAll(normalizeKey(o.Key), "-", "_")
		if seen[k] {
			continue
		}
		seen[k] = true
		o.Key = strings.ReplaceAll(o.Key, "-", "_")
		out = append(out, o)
	}
	return out
}

// ParseOverride parses "key=value" (a --set flag).
func ParseOverride(s, source string) (Override, error) {
	k, v, ok := strings.Cut(s, "=")
	if !ok || strings.TrimSpace(k) == "" {
		return Override{}, fmt.Errorf("config: override %q: expected key=value, e.g. cache.max_size=10GiB", s)
	}
	return Override{Key: strings.TrimSpace(k), Value: v, Source: source}, nil
}

// normalizeKey writes array indexes with brackets: "interface.0.dhcp" →
// "interface[0].dhcp", the form problems use.
func normalizeKey(key string) string {
	var b strings.Builder
	for i, part := range strings.Split(strings.ReplaceAll(strings.ReplaceAll(key, "[", "."), "]", ""), ".") {
		if _, err := strconv.Atoi(part); err == nil && i > 0 {
			b.WriteString("[" + part + "]")
			continue
		}
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(part)
	}
	return b.String()
}

// overriddenBy reports whether key, or a key that contains it, was set by
// an override, and by which source.
func overriddenBy(overridden map[string]string, key string) (string, bool) {
	for k := key; k != ""; k = parentKey(k) {
		if src, ok := overridden[k]; ok {
			return src, true
		}
	}
	return "", false
}

// apply sets the override's value in c, parsing it as the key's type:
// lists are comma-separated, sizes, durations and the like take the same
// text as in the file.
func (o Override) apply(c *Config) error {
	parts := strings.Split(strings.ReplaceAll(strings.ReplaceAll(o.Key, "[", "."), "]", ""), ".")
	v := reflect.ValueOf(c).Elem()
	for i, part := range parts {
		switch {
		case v.Kind() == reflect.Slice && isTable(v.Type().Elem()):
			n, err := strconv.Atoi(part)
			if err != nil || n < 0 || n > v.Len() {
				return fmt.Errorf("unknown key: %q needs an entry index from 0 to %d here", strings.Join(parts[:i], "."), v.Len())
			}
			if n == v.Len() {
				v.Set(reflect.Append(v, reflect.Zero(v.Type().Elem())))
			}
			v = v.Index(n)
		case isTable(v.Type()):
			f, ok := fieldByKey(v.Type(), part)
			if !ok {
				return fmt.Errorf("unknown key %q: expected one of %s", part, strings.Join(keysOf(v.Type()), ", "))
			}
			v = v.FieldByIndex(f.Index)
		default:
			return fmt.Errorf("unknown key: %q is not a table", strings.Join(parts[:i], "."))
		}
	}
	if isTable(v.Type()) || (v.Kind() == reflect.Slice && isTable(v.Type().Elem())) {
		return fmt.Errorf("is a table: set one of its keys (%s)", o.Key)
	}
	if err := setText(v, o.Value); err != nil {
		return fmt.Errorf("%v (expected %s)", err, describe(v.Type()))
	}
	return nil
}

// setText sets v from its text form.
func setText(v reflect.Value, text string) error {
	if u, ok := v.Addr().Interface().(encoding.TextUnmarshaler); ok {
		return u.UnmarshalText([]byte(text))
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(text)
	case reflect.Bool:
		b, err := strconv.ParseBool(text)
		if err != nil {
			return fmt.Errorf("invalid value %q", text)
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int64, reflect.Int32:
		n, err := strconv.ParseInt(strings.ReplaceAll(text, "_", ""), 10, 64)
		if err != nil || v.OverflowInt(n) {
			return fmt.Errorf("invalid value %q", text)
		}
		v.SetInt(n)
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 0, 0)
		for _, item := range strings.Split(text, ",") {
			if item = strings.TrimSpace(item); item == "" {
				continue
			}
			e := reflect.New(v.Type().Elem()).Elem()
			if err := setText(e, item); err != nil {
				return err
			}
			s = reflect.Append(s, e)
		}
		v.Set(s)
	default:
		return fmt.Errorf("cannot set a %s", v.Type())
	}
	return nil
}
