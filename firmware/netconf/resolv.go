package netconf

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
)

// Resolv maintains resolv.conf from several sources (static DNS of each
// interface, each DHCP lease), rewriting the file when one changes.
type Resolv struct {
	path    string
	mu      sync.Mutex
	sources map[string]resolvSource
}

type resolvSource struct {
	servers []net.IP
	search  []string
	domain  string
}

// NewResolv returns a Resolv writing path (/etc/resolv.conf on the
// appliance).
func NewResolv(path string) *Resolv {
	return &Resolv{path: path, sources: map[string]resolvSource{}}
}

// Set records the DNS settings of one source and rewrites the file.
func (r *Resolv) Set(source string, servers []net.IP, search []string, domain string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sources[source] = resolvSource{servers, search, domain}
	return r.write()
}

// write renders the sources in a stable order (static before DHCP, then by
// name), without duplicate servers, and replaces the file atomically.
func (r *Resolv) write() error {
	names := make([]string, 0, len(r.sources))
	for n := range r.sources {
		names = append(names, n)
	}
	sort.Strings(names)
	sort.SliceStable(names, func(i, j int) bool {
		return strings.HasPrefix(names[i], "static:") && !strings.HasPrefix(names[j], "static:")
	})
	var b strings.Builder
	b.WriteString("# written by outpost\n")
	seen := map[string]bool{}
	var search []string
	domain := ""
	for _, n := range names {
		s := r.sources[n]
		if domain == "" {
			domain = s.domain
		}
		for _, d := range s.search {
			if !seen["search "+d] {
				seen["search "+d] = true
				search = append(search, d)
			}
		}
		for _, ip := range s.servers {
			if !seen[ip.String()] {
				seen[ip.String()] = true
				fmt.Fprintf(&b, "nameserver %s\n", ip)
			}
		}
	}
	if domain != "" {
		fmt.Fprintf(&b, "domain %s\n", domain)
	}
	if len(search) > 0 {
		fmt.Fprintf(&b, "search %s\n", strings.Join(search, " "))
	}
	tmp := r.path + ".tmp"
	if err := os.MkdirAll(filepath.Dir(r.path), 0o755); err != nil {
		return fmt.Errorf("netconf: resolv.conf: %w", err)
	}
	if err := os.WriteFile(tmp, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("netconf: resolv.conf: %w", err)
	}
	if err := os.Rename(tmp, r.path); err != nil {
		return fmt.Errorf("netconf: resolv.conf: %w", err)
	}
	return nil
}
