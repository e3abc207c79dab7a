// Command runvm is `make run`: it builds the qemu-amd64 image if needed and
// boots it in QEMU on this terminal with a demo configuration (DHCP from
// QEMU's user network, NTP off), forwarding the hosted-cache, peer and API
// ports to localhost. The data disk is kept in build/run/ between runs.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"

	"github.com/outpost-appliance/outpost/image/build"
	"github.com/outpost-appliance/outpost/image/qemu"
)

// forwards maps localhost ports to the guest's: ports below 1024 move up
// so no host service is disturbed.
var forwards = []struct {
	host, guest int
	what        string
}{
	{1339, 1339, "hosted cache, MS-PCHC v2 + MS-PCCRR over HTTP"},
	{8443, 443, "hosted cache, MS-PCHC v1 over HTTPS"},
	{1337, 1337, "peer (MS-PCCRR)"},
	{9000, 9000, "management API and status page"},
	{8081, 81, "leader relay"},
}

func main() {
	version := flag.String("version", "dev", "outpost version string")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, log, *version); err != nil {
		log.Error("make run failed", "err", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, log *slog.Logger, version string) error {
	if err := ensureQEMU(ctx, log); err != nil {
		return err
	}
	repo, err := os.Getwd()
	if err != nil {
		return err
	}
	out := filepath.Join(repo, "build")
	t, err := build.SourceTime(ctx, repo)
	if err != nil {
		return err
	}
	r, err := build.Board(ctx, build.Options{Repo: repo, Out: out, Version: version, Time: t, Log: log}, "qemu-amd64")
	if err != nil {
		return err
	}
	state := filepath.Join(out, "run")
	disk := filepath.Join(state, "disk.img")
	if _, err := os.Stat(disk); err != nil {
		if err := os.MkdirAll(state, 0o755); err != nil {
			return err
		}
		if b, err := exec.CommandContext(ctx, "cp", "--sparse=always", r.Disk, disk).CombinedOutput(); err != nil {
			return fmt.Errorf("copy disk image: %w: %s", err, b)
		}
	}
	var fwd []string
	fmt.Println("Outpost (qemu-amd64) is booting in QEMU; ports on localhost:")
	for _, f := range forwards {
		fwd = append(fwd, fmt.Sprintf("hostfwd=tcp:127.0.0.1:%d-:%d", f.host, f.guest))
		fmt.Printf("  %5d -> guest %-5d %s\n", f.host, f.guest, f.what)
	}
	fmt.Printf(`Status page: http://localhost:9000/   data disk (kept between runs): %s
Try:  go build -o bin/outpost ./firmware/cmd/outpost && head -c 5000000 /dev/urandom > /tmp/f
      bin/outpost ci hash --version 2 --secret demo /tmp/f -o /tmp/f.ci
      bin/outpost offer --to localhost:1339 --version 2 --ci /tmp/f.ci --data /tmp/f
      bin/outpost get --from localhost:1339 --v2-seglist --ci /tmp/f.ci -o /tmp/f.out
Stop: Ctrl-A then X (or POST /api/v1/poweroff).

`, disk)
	m := qemu.Machine{
		Board: r.Board, Kernel: r.Kernel, Initramfs: r.Initramfs, Disk: disk,
		Append: "outpost.time.ntp=",
		// Not restrict=on: the hosted cache must reach back to the offering
		// client (the host, 10.0.2.2 in the guest) to pull blocks.
		Net: []string{"-netdev", "user,id=n0," + strings.Join(fwd, ","),
			"-device", "virtio-net-pci,netdev=n0"},
	}
	args := m.Args()
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	return cmd.Run()
}

// ensureQEMU installs QEMU when it is missing and this is root on Debian,
// and otherwise says what to install. The build itself needs kmod,
// dosfstools, mtools and e2fsprogs (installed the same way).
func ensureQEMU(ctx context.Context, log *slog.Logger) error {
	need := map[string]string{"qemu-system-x86_64": "qemu-system-x86", "depmod": "kmod", "mkfs.vfat": "dosfstools", "mcopy": "mtools", "mkfs.ext4": "e2fsprogs"}
	var pkgs []string
	for tool, pkg := range need {
		if _, err := exec.LookPath(tool); err != nil {
			pkgs = append(pkgs, pkg)
		}
	}
	if len(pkgs) == 0 {
		return nil
	}
	if _, err := exec.LookPath("apt-get"); err != nil || os.Geteuid() != 0 {
		return fmt.Errorf("missing tools; install (as root, Debian): apt-get install --no-install-recommends %s", strings.Join(pkgs, " "))
	}
	log.Info("installing", "packages", pkgs)
	cmd := exec.CommandContext(ctx, "apt-get", append([]string{"install", "-y", "-q", "--no-install-recommends"}, pkgs...)...)
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("apt-get install %s: %w", strings.Join(pkgs, " "), err)
	}
	return nil
}
