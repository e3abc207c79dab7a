package config

import (
	"encoding"
	"fmt"
	"reflect"

	"github.com/pelletier/go-toml/v2/unstable"

	"github.com/outpost-appliance/outpost/cache/preload/bandwidth"
)

// textKinds lists the TOML kinds each self-parsing value type accepts
// besides strings: sizes may be plain integers (bytes), percentages
// numbers.
var textKinds = map[reflect.Type][]unstable.Kind{
	reflect.TypeFor[Size]():     {unstable.Integer},
	reflect.TypeFor[Percent]():  {unstable.Integer, unstable.Float},
	reflect.TypeFor[Duration](): {unstable.Integer},
	// 0 is no limit; other numbers need a unit (checked by parsing).
	reflect.TypeFor[bandwidth.Rate](): {unstable.Integer},
}

// checkTextValues parses, before decoding, every value whose type parses
// itself from text (sizes, durations, addresses, enumerations…), so that a
// wrong kind or a malformed value is reported with its key, line and
// column — go-toml only positions the errors of string values — and all
// such mistakes are reported at once.
func checkTextValues(data []byte, name string) []Problem {
	var problems []Problem
	walkDocument(data, func(key string, v *unstable.Node, pos position) {
		if v == nil || v.Kind == unstable.Array || v.Kind == unstable.InlineTable {
			return
		}
		t := typeAt(stripIndexes(key))
		if t != nil && t.Kind() == reflect.Slice && key[len(key)-1] == ']' {
			t = t.Elem()
		}
		if t == nil || !reflect.PointerTo(t).Implements(textUnmarshalerType) {
			return
		}
		bad := func(msg string) {
			problems = append(problems, Problem{Source: name, Line: pos.line, Column: pos.column, Key: key, Message: msg})
		}
		if v.Kind != unstable.String && !kindAllowed(t, v.Kind) {
			bad(fmt.Sprintf("wrong type: got a TOML %s, expected %s", kindName(v.Kind), describe(t)))
			return
		}
		if err := reflect.New(t).Interface().(encoding.TextUnmarshaler).UnmarshalText(v.Data); err != nil {
			bad(err.Error())
		}
	})
	return problems
}

func kindAllowed(t reflect.Type, k unstable.Kind) bool {
	for _, allowed := range textKinds[t] {
		if k == allowed {
			return true
		}
	}
	return false
}

func kindName(k unstable.Kind) string {
	switch k {
	case unstable.Bool:
		return "boolean"
	case unstable.Integer:
		return "integer"
	case unstable.Float:
		return "float"
	case unstable.String:
		return "string"
	case unstable.Array:
		return "array"
	case unstable.InlineTable:
		return "table"
	case unstable.LocalDate, unstable.LocalDateTime, unstable.LocalTime, unstable.DateTime:
		return "date/time"
	}
	return k.String()
}
