package pccrtp

import "testing"

func TestAcceptsPeerDist(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"peerdist", true},
		{"gzip, deflate, peerdist", true}, // Windows
		{"PeerDist", true},
		{"gzip,peerdist", true},
		{"peerdist;q=1", true},
		{"peerdist;q=1.000", true},
		{"peerdist ; q=0.5", true},
		{"peerdist;Q=0.001", true},
		{"peerdist;q=0.5;foo=bar", true},
		{"gzip;q=0, peerdist", true},
		{"", false},
		{"gzip, deflate", false},
		{"*", false}, // wildcard does not ask for content information
		{"peerdist;q=0", false},
		{"peerdist;q=0.0", false},
		{"peerdist;q=0.000", false},
		{"peerdist; q=0", false},
		{"peerdist, peerdist;q=0", false}, // an explicit refusal wins
		{"peerdist;q=2", false},
		{"peerdist;q=1.5", false},
		{"peerdist;q=0.0001", false},
		{"peerdist;q=", false},
		{"peerdist;q=abc", false},
		{"peerdistx", false},
		{"xpeerdist", false},
		{"peer dist", false},
	}
	for _, tt := range tests {
		if got := AcceptsPeerDist(tt.in); got != tt.want {
			t.Errorf("AcceptsPeerDist(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}
