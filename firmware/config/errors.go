package config

import (
	"fmt"
	"strings"
)

// Problem is one thing wrong with a configuration: which key, where it was
// set, and what was expected.
type Problem struct {
	// Source is the file name, or where an override came from
	// ("kernel command line", "--set").
	Source string `json:"source"`
	// Line and Column locate the value in the file (1-based); 0 when the
	// value did not come from the file.
	Line   int `json:"line,omitempty"`
	Column int `json:"column,omitempty"`
	// Key is the dotted key: "cache.max_size", "interface[1].vlan".
	Key string `json:"key,omitempty"`
	// Message says what is wrong and what was expected.
	Message string `json:"message"`
}

// String formats the problem as "file:line:column: key: message".
func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.Source)
	if p.Line > 0 {
		fmt.Fprintf(&b, ":%d:%d", p.Line, p.Column)
	}
	b.WriteString(": ")
	if p.Key != "" {
		b.WriteString(p.Key)
		b.WriteString(": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// Error is a configuration that cannot be used, with every problem found.
type Error struct {
	Problems []Problem
}

func (e *Error) Error() string {
	if len(e.Problems) == 1 {
		return "config: " + e.Problems[0].String()
	}
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = "  " + p.String()
	}
	return fmt.Sprintf("config: %d problems:\n%s", len(e.Problems), strings.Join(lines, "\n"))
}

// problemf makes a problem for key; its source and position are filled in
// later from the file's key index.
func problemf(key, format string, args ...any) Problem {
	return Problem{Key: key, Message: fmt.Sprintf(format, args...)}
}
