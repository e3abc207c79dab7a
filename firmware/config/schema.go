package config

import (
	"encoding"
	"reflect"
	"strings"

	"github.com/outpost-appliance/outpost/cache/preload/bandwidth"
	"github.com/outpost-appliance/outpost/cache/preload/window"
)

// The schema is read from the Config struct's toml tags, so that the key
// names in error messages, overrides and the completeness test of the
// default file can never drift from what the decoder accepts.

var textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()

// tomlName returns the key a struct field is decoded from.
func tomlName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
	return name
}

// fieldByKey finds the field of struct type t decoded from key.
func fieldByKey(t reflect.Type, key string) (reflect.StructField, bool) {
	for i := 0; i < t.NumField(); i++ {
		if f := t.Field(i); f.IsExported() && tomlName(f) == key {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// keysOf lists the keys of struct type t, in declaration order.
func keysOf(t reflect.Type) []string {
	var keys []string
	for i := 0; i < t.NumField(); i++ {
		if f := t.Field(i); f.IsExported() && tomlName(f) != "" {
			keys = append(keys, tomlName(f))
		}
	}
	return keys
}

// isTable reports whether values of t are TOML tables (structs that do not
// parse themselves from text).
func isTable(t reflect.Type) bool {
	return t.Kind() == reflect.Struct && !reflect.PointerTo(t).Implements(textUnmarshalerType)
}

// typeAt returns the Go type of the value at a dotted key without indexes
// ("interface.vlan"), or nil if there is no such key.
func typeAt(key string) reflect.Type {
	t := reflect.TypeFor[Config]()
	for _, part := range strings.Split(key, ".") {
		for t.Kind() == reflect.Slice && isTable(t.Elem()) {
			t = t.Elem()
		}
		if !isTable(t) {
			return nil
		}
		f, ok := fieldByKey(t, part)
		if !ok {
			return nil
		}
		t = f.Type
	}
	return t
}

// describe says in words what a value of type t is written as, for
// "expected …" messages.
func describe(t reflect.Type) string {
	switch t {
	case reflect.TypeFor[Size]():
		return `a size such as "20GiB" or "512MiB"`
	case reflect.TypeFor[Duration]():
		return `a duration such as "28d" or "15s"`
	case reflect.TypeFor[Percent]():
		return `a percentage such as 80 or "80%"`
	case reflect.TypeFor[ListenAddr]():
		return `a listening address such as ":9000"`
	case reflect.TypeFor[Prefix]():
		return `an address with prefix length such as "192.168.1.10/24"`
	case reflect.TypeFor[Addr]():
		return `an IP address such as "192.168.1.1"`
	case reflect.TypeFor[DelayRange]():
		return `a delay range such as "1ms-65ms"`
	case reflect.TypeFor[bandwidth.Rate]():
		return `a bandwidth such as "20Mbit/s" or "2.5MB/s", or 0 for no limit`
	case reflect.TypeFor[window.Window]():
		return `a daily window such as "01:00-05:00" or "22:00-06:00 Europe/Berlin"`
	case reflect.TypeFor[Role](), reflect.TypeFor[Profile](), reflect.TypeFor[XDPMode](), reflect.TypeFor[LogLevel](),
		reflect.TypeFor[Secret]():
		return "a string"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int64, reflect.Int32:
		return "an integer"
	case reflect.Slice:
		if isTable(t.Elem()) {
			return "a list of tables ([[...]] sections)"
		}
		return "a list of " + strings.TrimPrefix(strings.TrimPrefix(describe(t.Elem()), "a "), "an ") + " values"
	case reflect.Struct:
		return "a table"
	}
	return t.String()
}
