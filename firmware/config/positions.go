package config

import (
	"sort"
	"strconv"
	"strings"

	"github.com/pelletier/go-toml/v2/unstable"
)

// position is where a key's value (or a table's header) sits in the file.
type position struct{ line, column int }

// keyIndex maps every dotted key in a document ("cache.max_size",
// "interface[1].vlan", "interface[1]", "time.ntp[0]") to its position, so
// that problems found after decoding (ranges, clashes between keys) can be
// reported at the line and column the admin has to edit.
type keyIndex map[string]position

func indexKeys(data []byte) keyIndex {
	idx := keyIndex{}
	walkDocument(data, func(key string, _ *unstable.Node, pos position) { idx[key] = pos })
	return idx
}

// walkDocument calls visit for every table header, key and array element
// of a TOML document, with its dotted key (array entries and elements
// indexed) and position: values for scalars, keys for tables and arrays.
// value is nil for table headers. A syntax error ends the walk; the
// decoder reports it.
func walkDocument(data []byte, visit func(key string, value *unstable.Node, pos position)) {
	var p unstable.Parser
	p.Reset(data)
	at := func(r unstable.Range) position {
		s := p.Shape(r).Start
		return position{s.Line, s.Column}
	}
	arrayCounts := map[string]int{}
	prefix := ""
	for p.NextExpression() {
		e := p.Expression()
		switch e.Kind {
		case unstable.Table, unstable.ArrayTable:
			parts, first := keyParts(e.Key())
			prefix = strings.Join(parts, ".")
			if e.Kind == unstable.ArrayTable {
				n := arrayCounts[prefix]
				arrayCounts[prefix]++
				prefix += "[" + strconv.Itoa(n) + "]"
			}
			if first != nil {
				visit(prefix, nil, at(first.Raw))
			}
		case unstable.KeyValue:
			walkKeyValue(prefix, e, at, visit)
		}
	}
}

func walkKeyValue(prefix string, kv *unstable.Node, at func(unstable.Range) position, visit func(string, *unstable.Node, position)) {
	parts, first := keyParts(kv.Key())
	key := strings.Join(parts, ".")
	if prefix != "" {
		key = prefix + "." + key
	}
	keyPos := at(first.Raw)
	v := kv.Value()
	switch v.Kind {
	case unstable.InlineTable:
		visit(key, v, keyPos)
		it := v.Children()
		for it.Next() {
			walkKeyValue(key, it.Node(), at, visit)
		}
	case unstable.Array:
		visit(key, v, keyPos)
		it := v.Children()
		for i := 0; it.Next(); i++ {
			elem := it.Node()
			elemKey := key + "[" + strconv.Itoa(i) + "]"
			switch {
			case elem.Kind == unstable.InlineTable:
				visit(elemKey, elem, keyPos)
				inner := elem.Children()
				for inner.Next() {
					walkKeyValue(elemKey, inner.Node(), at, visit)
				}
			case elem.Raw.Length > 0:
				visit(elemKey, elem, at(elem.Raw))
			default:
				visit(elemKey, elem, keyPos)
			}
		}
	default:
		if v.Raw.Length > 0 {
			visit(key, v, at(v.Raw))
		} else {
			visit(key, v, keyPos)
		}
	}
}

func keyParts(it unstable.Iterator) (parts []string, first *unstable.Node) {
	for it.Next() {
		if first == nil {
			first = it.Node()
		}
		parts = append(parts, string(it.Node().Data))
	}
	return parts, first
}

// locate returns the position of key, or of the nearest enclosing key or
// table that is in the file (a missing key is reported at its table).
func (idx keyIndex) locate(key string) (position, bool) {
	for k := key; k != ""; k = parentKey(k) {
		if p, ok := idx[k]; ok {
			return p, true
		}
	}
	// A table only implied by a nested one ([[leader.peer]] without
	// [leader]): the first key inside it.
	for k := key; k != ""; k = parentKey(k) {
		var first position
		found := false
		for other, p := range idx {
			if strings.HasPrefix(other, k+".") || strings.HasPrefix(other, k+"[") {
				if !found || p.line < first.line || (p.line == first.line && p.column < first.column) {
					first, found = p, true
				}
			}
		}
		if found {
			return first, true
		}
	}
	return position{}, false
}

// keyAt returns the most specific key whose value starts on line, for
// decode errors that name a key without its array index.
func (idx keyIndex) keyAt(line int, want string) string {
	var candidates []string
	for k, p := range idx {
		if p.line == line && stripIndexes(k) == want {
			candidates = append(candidates, k)
		}
	}
	if len(candidates) == 0 {
		return ""
	}
	sort.Strings(candidates)
	return candidates[0]
}

// parentKey drops the last part of a dotted key: "a[1].b" → "a[1]" →
// "a" → "".
func parentKey(k string) string {
	if strings.HasSuffix(k, "]") {
		if i := strings.LastIndexByte(k, '['); i >= 0 {
			return k[:i]
		}
	}
	if i := strings.LastIndexByte(k, '.'); i >= 0 {
		return k[:i]
	}
	return ""
}

// stripIndexes turns "interface[1].address[0]" into "interface.address".
func stripIndexes(k string) string {
	var b strings.Builder
	skip := false
	for _, r := range k {
		switch {
		case r == '[':
			skip = true
		case r == ']':
			skip = false
		case !skip:
			b.WriteRune(r)
		}
	}
	return b.String()
}
