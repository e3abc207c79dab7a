// Package fetch gets kernels, loaders and boot firmware by package name:
// Debian packages with apt-get download (checked against the signed
// archive's checksums) unpacked with dpkg-deb -x, and Go modules through
// the module proxy (checked against sum.golang.org). Everything lands in a
// cache directory so warm builds touch the network only to resolve names.
package fetch

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Debian fetches Debian packages into Dir.
type Debian struct {
	Dir string // cache: <Dir>/<package>_<version>_<arch>/ holds the unpacked tree
}

// Resolve turns a meta package (linux-image-cloud-amd64) into the package
// it depends on today (linux-image-6.1.0-56-cloud-amd64): old ABIs leave
// the mirror, so names are resolved at build time instead of pinned.
func (d Debian) Resolve(ctx context.Context, meta, arch string) (string, error) {
	if !strings.HasPrefix(meta, "linux-image-") {
		return meta, nil
	}
	if err := d.ensureArch(ctx, arch); err != nil {
		return "", err
	}
	out, err := run(ctx, "", "apt-cache", "depends", meta+":"+arch)
	if err != nil {
		// A fresh machine may have no package lists yet.
		if _, uerr := run(ctx, "", "apt-get", "update", "-q"); uerr != nil {
			return "", fmt.Errorf("resolve %s: %w (and %v)", meta, err, uerr)
		}
		if out, err = run(ctx, "", "apt-cache", "depends", meta+":"+arch); err != nil {
			return "", fmt.Errorf("resolve %s: %w", meta, err)
		}
	}
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		if name, ok := strings.CutPrefix(line, "Depends: "); ok && strings.HasPrefix(name, "linux-image-") {
			return strings.TrimSuffix(name, ":"+arch), nil
		}
	}
	return "", fmt.Errorf("resolve %s: no linux-image dependency in apt-cache output", meta)
}

// Unpacked downloads pkg for arch (unless cached) and returns the directory
// it is unpacked in.
func (d Debian) Unpacked(ctx context.Context, pkg, arch string) (string, error) {
	if err := d.ensureArch(ctx, arch); err != nil {
		return "", err
	}
	spec := pkg + ":" + arch
	out, err := run(ctx, "", "apt-get", "download", "--print-uris", spec)
	if err != nil {
		return "", fmt.Errorf("fetch %s: %w", spec, err)
	}
	fields := strings.Fields(out)
	if len(fields) < 2 {
		return "", fmt.Errorf("fetch %s: unexpected apt-get --print-uris output %q", spec, out)
	}
	deb := fields[1] // <package>_<version>_<arch>.deb
	dir := filepath.Join(d.Dir, strings.TrimSuffix(deb, ".deb"))
	if _, err := os.Stat(dir); err == nil {
		return dir, nil
	}
	debDir := filepath.Join(d.Dir, "deb")
	if err := os.MkdirAll(debDir, 0o755); err != nil {
		return "", err
	}
	// Builds may run at once (the tests do): each downloads and unpacks
	// into its own temporary directory and renames; the first rename wins.
	tmp, err := os.MkdirTemp(d.Dir, ".fetch-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	debPath := filepath.Join(debDir, deb)
	if _, err := os.Stat(debPath); err != nil {
		if _, err := run(ctx, tmp, "apt-get", "download", spec); err != nil {
			return "", fmt.Errorf("fetch %s: %w", spec, err)
		}
		if err := os.Rename(filepath.Join(tmp, deb), debPath); err != nil {
			return "", fmt.Errorf("fetch %s: %w", spec, err)
		}
	}
	tree := filepath.Join(tmp, "tree")
	if _, err := run(ctx, "", "dpkg-deb", "-x", debPath, tree); err != nil {
		return "", fmt.Errorf("unpack %s: %w", deb, err)
	}
	if err := os.Rename(tree, dir); err != nil && !exists(dir) {
		return "", fmt.Errorf("unpack %s: %w", deb, err)
	}
	return dir, nil
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// ensureArch adds a foreign dpkg architecture (arm64 kernels on an amd64
// host) once, so apt can see its packages.
func (d Debian) ensureArch(ctx context.Context, arch string) error {
	native, err := run(ctx, "", "dpkg", "--print-architecture")
	if err != nil {
		return err
	}
	if strings.TrimSpace(native) == arch {
		return nil
	}
	foreign, err := run(ctx, "", "dpkg", "--print-foreign-architectures")
	if err != nil {
		return err
	}
	for _, a := range strings.Fields(foreign) {
		if a == arch {
			return nil
		}
	}
	if _, err := run(ctx, "", "dpkg", "--add-architecture", arch); err != nil {
		return err
	}
	if _, err := run(ctx, "", "apt-get", "update", "-q"); err != nil {
		return fmt.Errorf("apt-get update after adding %s: %w", arch, err)
	}
	return nil
}

// GoModule downloads module@version through the module proxy and returns
// its read-only directory in the module cache.
func GoModule(ctx context.Context, modVersion string) (string, error) {
	tmp, err := os.MkdirTemp("", "outpost-fetch-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	// Run outside any module so the project's go.mod is never touched.
	cmd := exec.CommandContext(ctx, "go", "mod", "download", "-json", modVersion)
	cmd.Dir = tmp
	cmd.Env = append(os.Environ(), "GO111MODULE=on", "GOFLAGS=-mod=mod")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go mod download %s: %w: %s%s", modVersion, err, stderr.String(), stdout.String())
	}
	var info struct{ Dir, Error string }
	if err := json.Unmarshal(stdout.Bytes(), &info); err != nil {
		return "", fmt.Errorf("go mod download %s: %w", modVersion, err)
	}
	if info.Error != "" || info.Dir == "" {
		return "", fmt.Errorf("go mod download %s: %s", modVersion, info.Error)
	}
	return info.Dir, nil
}

func run(ctx context.Context, dir, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}
