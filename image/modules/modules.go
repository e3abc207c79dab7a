// Package modules stages the subset of a kernel's modules a board loads
// at boot, with their dependencies, into an initramfs tree, and
// regenerates modules.dep for that subset with Debian's depmod.
package modules

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

// KernelVersion returns the single kernel release under root/lib/modules.
func KernelVersion(root string) (string, error) {
	entries, err := os.ReadDir(filepath.Join(root, "lib", "modules"))
	if err != nil {
		return "", fmt.Errorf("kernel version: %w", err)
	}
	var found []string
	for _, e := range entries {
		if e.IsDir() {
			found = append(found, e.Name())
		}
	}
	if len(found) != 1 {
		return "", fmt.Errorf("kernel version: want one release under %s/lib/modules, found %v", root, found)
	}
	return found[0], nil
}

// Stage copies names and their dependencies from the kernel tree src
// (root of an unpacked kernel package, writable) to dst/lib/modules/kver
// and runs depmod there. Built-in modules are skipped. It returns the
// names to load at boot (those not built in) and the staged module files,
// relative to dst.
func Stage(ctx context.Context, src, kver, dst string, names []string) (load, files []string, err error) {
	src, err = filepath.Abs(src) // modprobe -d prints absolute paths
	if err != nil {
		return nil, nil, err
	}
	modDir := filepath.Join(src, "lib", "modules", kver)
	if _, err := os.Stat(filepath.Join(modDir, "modules.dep")); err != nil {
		// Debian's packages leave modules.dep to the postinst script.
		if _, err := run(ctx, "depmod", "-b", src, kver); err != nil {
			return nil, nil, err
		}
	}
	outDir := filepath.Join(dst, "lib", "modules", kver)
	if err := os.RemoveAll(filepath.Join(dst, "lib", "modules")); err != nil {
		return nil, nil, err
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return nil, nil, err
	}
	staged := map[string]bool{}
	for _, name := range names {
		out, err := run(ctx, "modprobe", "-d", src, "-S", kver, "--show-depends", name)
		if err != nil {
			return nil, nil, fmt.Errorf("module %s: %w", name, err)
		}
		if !strings.Contains(out, "insmod ") {
			continue // built in
		}
		load = append(load, name)
		for _, line := range strings.Split(out, "\n") {
			f := strings.Fields(line)
			if len(f) < 2 || f[0] != "insmod" {
				continue // "builtin x": nothing to stage
			}
			rel, err := filepath.Rel(modDir, f[1])
			if err != nil || strings.HasPrefix(rel, "..") {
				return nil, nil, fmt.Errorf("module %s: %s is outside %s", name, f[1], modDir)
			}
			if staged[rel] {
				continue
			}
			staged[rel] = true
			if err := copyFile(filepath.Join(modDir, rel), filepath.Join(outDir, rel)); err != nil {
				return nil, nil, err
			}
		}
	}
	for _, f := range []string{"modules.builtin", "modules.builtin.modinfo", "modules.order"} {
		if err := copyFile(filepath.Join(modDir, f), filepath.Join(outDir, f)); err != nil && !os.IsNotExist(err) {
			return nil, nil, err
		}
	}
	if _, err := run(ctx, "depmod", "-b", dst, kver); err != nil {
		return nil, nil, err
	}
	for rel := range staged {
		files = append(files, filepath.Join("lib", "modules", kver, rel))
	}
	sort.Strings(files)
	return load, files, nil
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		return err
	}
	out, err := os.Create(to)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copy %s: %w", from, err)
	}
	return out.Close()
}

func run(ctx context.Context, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}
