// Package build makes a board's image: it fetches the kernel (and the
// loader or boot firmware), stages the kernel modules, compiles outpost
// and the break-glass commands with a cached `go build`, writes the
// initramfs with outpost as /init, and lays out the disk or SD image.
// Outputs go to <Out>/<board>/; downloads are cached in <Out>/cache/.
package build

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/outpost-appliance/outpost/image/board"
	"github.com/outpost-appliance/outpost/image/disk"
	"github.com/outpost-appliance/outpost/image/fetch"
	"github.com/outpost-appliance/outpost/image/initramfs"
	"github.com/outpost-appliance/outpost/image/modules"
)

// BreakGlass are the u-root commands in /bin for the serial console: a
// shell (rush: no dependencies beyond u-root's module) and the few tools
// to look around.
var BreakGlass = []string{
	"github.com/u-root/u-root/cmds/exp/rush",
	"github.com/u-root/u-root/cmds/core/ls",
	"github.com/u-root/u-root/cmds/core/cat",
	"github.com/u-root/u-root/cmds/core/ip",
	"github.com/u-root/u-root/cmds/core/dmesg",
	"github.com/u-root/u-root/cmds/core/mount",
}

// Options configure a build.
type Options struct {
	Repo    string    // repository root (go.mod, board/, firmware/)
	Out     string    // build directory
	Cache   string    // downloads and compiled binaries ("": <Out>/cache)
	Version string    // outpost's version string
	Time    time.Time // every timestamp in the image (the commit time)
	Log     *slog.Logger
}

// Result names a board's outputs.
type Result struct {
	Board     *board.Board
	Dir       string // <Out>/<board>
	Kernel    string // vmlinuz
	Initramfs string // initramfs.cpio.gz
	Disk      string // disk.img (GPT) or sdcard.img (rpi); "" when the board has none
	KernelVer string
	Modules   []string // loaded at boot
}

// Board builds one board.
func Board(ctx context.Context, o Options, name string) (*Result, error) {
	b, err := board.Load(filepath.Join(o.Repo, "board"), name)
	if err != nil {
		return nil, err
	}
	r := &Result{Board: b, Dir: filepath.Join(o.Out, name)}
	if err := os.MkdirAll(r.Dir, 0o755); err != nil {
		return nil, err
	}
	cache := o.Cache
	if cache == "" {
		cache = filepath.Join(o.Out, "cache")
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return nil, err
	}
	work, err := os.MkdirTemp(o.Out, "."+name+"-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)

	kernelRoot, vmlinuz, err := fetchKernel(ctx, b, cache)
	if err != nil {
		return nil, fmt.Errorf("%s: kernel: %w", name, err)
	}
	if r.KernelVer, err = modules.KernelVersion(kernelRoot); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	stage := filepath.Join(work, "stage")
	load, files, err := modules.Stage(ctx, kernelRoot, r.KernelVer, stage, b.Kernel.Modules)
	if err != nil {
		return nil, fmt.Errorf("%s: modules: %w", name, err)
	}
	r.Modules = load
	o.Log.Info("kernel", "board", name, "release", r.KernelVer, "modules_loaded_at_boot", len(load), "module_files", len(files))

	t0 := time.Now()
	bins, err := goBuild(ctx, o, b.Arch, filepath.Join(r.Dir, "bin"))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}

	o.Log.Info("go build", "board", name, "seconds", secs(t0))
	t0 = time.Now()
	a := initramfs.New()
	a.File("init", filepath.Join(bins, "outpost"), 0o755)
	a.Symlink("bin/outpost", "/init")
	for _, pkg := range BreakGlass {
		a.File("bin/"+filepath.Base(pkg), filepath.Join(bins, filepath.Base(pkg)), 0o755)
	}
	a.Symlink("bin/sh", "rush")
	a.CharDev("dev/console", 0o600, 5, 1)
	a.CharDev("dev/null", 0o666, 1, 3)
	for _, d := range []string{"proc", "sys", "dev", "run", "tmp", "boot", "data", "etc", "root"} {
		a.Dir(d, 0o755)
	}
	if err := a.Tree("lib/modules", filepath.Join(stage, "lib", "modules")); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	a.Bytes("lib/modules-load.d/outpost.conf", []byte(strings.Join(load, "\n")+"\n"), 0o644)
	if cfg := filepath.Join(b.Dir, "outpost.toml"); exists(cfg) {
		a.File("etc/outpost.toml", cfg, 0o644) // the board's built-in default
	}
	r.Initramfs = filepath.Join(r.Dir, "initramfs.cpio.gz")
	if err := writeAtomic(r.Initramfs, func(w io.Writer) error { return a.WriteGzip(w, o.Time) }); err != nil {
		return nil, fmt.Errorf("%s: initramfs: %w", name, err)
	}
	o.Log.Info("initramfs", "board", name, "seconds", secs(t0))
	r.Kernel = filepath.Join(r.Dir, "vmlinuz")
	if err := copyFile(vmlinuz, r.Kernel); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}

	if b.Disk.Layout != "none" {
		t0 = time.Now()
		if r.Disk, err = buildDisk(ctx, o, b, r, kernelRoot, cache, work); err != nil {
			return nil, fmt.Errorf("%s: disk: %w", name, err)
		}
		o.Log.Info("disk image", "board", name, "seconds", secs(t0))
	}
	return r, nil
}

// fetchKernel returns the root of the unpacked kernel (holding
// lib/modules/<release>) and its vmlinuz.
func fetchKernel(ctx context.Context, b *board.Board, cache string) (root, vmlinuz string, err error) {
	switch b.Kernel.Source {
	case "debian":
		deb := fetch.Debian{Dir: cache}
		pkg, err := deb.Resolve(ctx, b.Kernel.Package, b.Arch)
		if err != nil {
			return "", "", err
		}
		root, err := deb.Unpacked(ctx, pkg, b.Arch)
		if err != nil {
			return "", "", err
		}
		kver, err := modules.KernelVersion(root)
		if err != nil {
			return "", "", err
		}
		return root, filepath.Join(root, "boot", "vmlinuz-"+kver), nil
	case "gomodule":
		dir, err := fetch.GoModule(ctx, b.Kernel.Package)
		if err != nil {
			return "", "", err
		}
		// The module cache is read-only and depmod writes next to the
		// modules, so the module tree is copied once.
		root := filepath.Join(cache, strings.NewReplacer("/", "_", "@", "_").Replace(b.Kernel.Package))
		if !exists(root) {
			tmp, err := os.MkdirTemp(cache, ".kernel-")
			if err != nil {
				return "", "", err
			}
			defer os.RemoveAll(tmp)
			if err := copyTree(filepath.Join(dir, "lib"), filepath.Join(tmp, "lib")); err != nil {
				return "", "", err
			}
			if err := os.Rename(tmp, root); err != nil && !exists(root) {
				return "", "", err
			}
		}
		return root, filepath.Join(dir, "vmlinuz"), nil
	}
	return "", "", fmt.Errorf("unknown kernel source %q", b.Kernel.Source)
}

// goBuild compiles outpost and the break-glass commands for arch into dir
// with the Go build cache (a warm rebuild only relinks what changed).
func goBuild(ctx context.Context, o Options, arch, dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	ldflags := "-s -w -buildid= -X main.buildVersion=" + o.Version
	builds := [][]string{
		{"build", "-trimpath", "-ldflags", ldflags, "-o", filepath.Join(dir, "outpost"), "./firmware/cmd/outpost"},
		append([]string{"build", "-trimpath", "-ldflags", "-s -w -buildid=", "-o", dir + "/"}, BreakGlass...),
	}
	for _, args := range builds {
		cmd := exec.CommandContext(ctx, "go", args...)
		cmd.Dir = o.Repo
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("go %s: %w: %s", strings.Join(args, " "), err, out)
		}
	}
	return dir, nil
}

// buildDisk stages the boot partition's files and lays out the image.
func buildDisk(ctx context.Context, o Options, b *board.Board, r *Result, kernelRoot, cache, work string) (string, error) {
	tree := filepath.Join(work, "boot")
	if err := os.MkdirAll(tree, 0o755); err != nil {
		return "", err
	}
	put := func(rel, src string) error { return copyFile(src, filepath.Join(tree, rel)) }
	putBytes := func(rel, text string) error {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(tree, rel)), 0o755); err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(tree, rel), []byte(text), 0o644)
	}
	if err := put("outpost.toml", filepath.Join(o.Repo, "firmware", "outpost.example.toml")); err != nil {
		return "", err
	}
	layout := disk.Layout{Seed: b.Name, BootTree: tree, BootMiB: b.Disk.BootMiB, DataMiB: b.Disk.DataMiB, Time: o.Time}
	out := filepath.Join(r.Dir, "disk.img")
	switch b.Disk.Layout {
	case "gpt-efi":
		layout.Table = disk.GPT
		efiArch := map[string]string{"amd64": "x64", "arm64": "aa64"}[b.Arch]
		loaderRoot, err := fetch.Debian{Dir: cache}.Unpacked(ctx, b.Disk.Loader, b.Arch)
		if err != nil {
			return "", err
		}
		loader := filepath.Join(loaderRoot, "usr", "lib", "systemd", "boot", "efi", "systemd-boot"+efiArch+".efi")
		steps := []error{
			put("EFI/BOOT/BOOT"+strings.ToUpper(efiArch)+".EFI", loader),
			put("vmlinuz", r.Kernel),
			put("initramfs.cpio.gz", r.Initramfs),
			putBytes("loader/loader.conf", "default outpost-a.conf\ntimeout 0\nconsole-mode keep\n"),
			putBytes("loader/entries/outpost-a.conf", fmt.Sprintf("title Outpost %s (slot A)\nlinux /vmlinuz\ninitrd /initramfs.cpio.gz\noptions %s\n", o.Version, b.Kernel.Cmdline)),
		}
		for _, err := range steps {
			if err != nil {
				return "", err
			}
		}
	case "rpi-mbr":
		layout.Table = disk.MBR
		out = filepath.Join(r.Dir, "sdcard.img")
		if err := stageRPi(ctx, b, r, tree, put, putBytes); err != nil {
			return "", err
		}
	}
	if err := disk.Build(ctx, layout, out+".tmp", work); err != nil {
		return "", err
	}
	return out, os.Rename(out+".tmp", out)
}

// stageRPi puts the Pi boot firmware, kernel, device trees, config.txt and
// cmdline.txt on the boot partition, as the Pi's boot ROM expects them.
func stageRPi(ctx context.Context, b *board.Board, r *Result, tree string, put func(string, string) error, putBytes func(string, string) error) error {
	fw, err := fetch.GoModule(ctx, b.Disk.Firmware)
	if err != nil {
		return err
	}
	kdir, err := fetch.GoModule(ctx, b.Kernel.Package)
	if err != nil {
		return err
	}
	for _, glob := range []string{filepath.Join(fw, "*.bin"), filepath.Join(fw, "*.elf"), filepath.Join(fw, "*.dat"), filepath.Join(kdir, "*.dtb")} {
		matches, _ := filepath.Glob(glob)
		for _, m := range matches {
			if st, err := os.Stat(m); err == nil && st.Mode().IsRegular() {
				if err := put(filepath.Base(m), m); err != nil {
					return err
				}
			}
		}
	}
	if exists(filepath.Join(kdir, "overlays")) {
		if err := copyTree(filepath.Join(kdir, "overlays"), filepath.Join(tree, "overlays")); err != nil {
			return err
		}
	}
	for _, err := range []error{
		put("vmlinuz", r.Kernel),
		put("initramfs.cpio.gz", r.Initramfs),
		putBytes("cmdline.txt", b.Kernel.Cmdline+"\n"),
		putBytes("config.txt", RPiConfig),
	} {
		if err != nil {
			return err
		}
	}
	return nil
}

// RPiConfig is the Pi's config.txt: 64-bit kernel and the initramfs from
// the boot partition, serial console on the GPIO UART.
const RPiConfig = `# Outpost: Raspberry Pi 3, 4, 5, Zero 2 W (64-bit)
arm_64bit=1
kernel=vmlinuz
initramfs initramfs.cpio.gz followkernel
enable_uart=1
disable_splash=1
`

func secs(since time.Time) string { return fmt.Sprintf("%.1f", time.Since(since).Seconds()) }

func exists(p string) bool { _, err := os.Stat(p); return err == nil }

func writeAtomic(path string, write func(io.Writer) error) error {
	f, err := os.Create(path + ".tmp")
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(path+".tmp", path)
}

func copyFile(from, to string) error {
	data, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		return err
	}
	if old, err := os.ReadFile(to); err == nil && bytes.Equal(old, data) {
		return nil
	}
	return os.WriteFile(to, data, 0o644)
}

func copyTree(from, to string) error {
	return filepath.Walk(from, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		dst := filepath.Join(to, rel)
		if info.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		if !info.Mode().IsRegular() {
			return nil
		}
		return copyFile(p, dst)
	})
}

// SourceTime is SOURCE_DATE_EPOCH or the last commit's time.
func SourceTime(ctx context.Context, repo string) (time.Time, error) {
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		sec, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH: %w", err)
		}
		return time.Unix(sec, 0).UTC(), nil
	}
	cmd := exec.CommandContext(ctx, "git", "log", "-1", "--format=%ct")
	cmd.Dir = repo
	b, err := cmd.Output()
	if err != nil {
		return time.Time{}, fmt.Errorf("commit time (set SOURCE_DATE_EPOCH outside git): %w", err)
	}
	sec, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return time.Time{}, err
	}
	return time.Unix(sec, 0).UTC(), nil
}
