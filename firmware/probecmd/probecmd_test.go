package probecmd

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestUsage(t *testing.T) {
	tests := []struct {
		args     []string
		wantCode int
		wantErr  string
	}{
		{nil, 2, "--iface and --ci are required"},
		{[]string{"--iface", "eth0"}, 2, "--iface and --ci are required"},
		{[]string{"--iface", "eth0", "--ci", "x.ci", "--family", "5"}, 2, "--family must be 4 or 6"},
		{[]string{"--iface", "eth0", "--ci", "x.ci", "--wait", "0s"}, 2, "--wait must be positive"},
		{[]string{"--iface", "eth0", "--ci", "x.ci", "extra"}, 2, "unexpected arguments"},
		{[]string{"--iface", "eth0", "--ci", "/nonexistent.ci"}, 3, "no such file"},
	}
	for _, tt := range tests {
		var out, errOut bytes.Buffer
		code := Run(context.Background(), tt.args, &out, &errOut)
		if code != tt.wantCode || !strings.Contains(errOut.String(), tt.wantErr) {
			t.Errorf("%q: exit %d, stderr %q; want %d and %q", tt.args, code, errOut.String(), tt.wantCode, tt.wantErr)
		}
	}
}
