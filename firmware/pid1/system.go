package pid1

import (
	"bufio"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"unsafe"

	"github.com/u-root/u-root/pkg/kmodule"
	"golang.org/x/sys/unix"
)

// earlyMount is one of the filesystems init mounts before anything else.
type earlyMount struct {
	source, target, fstype string
	flags                  uintptr
	data                   string
}

// earlyMounts lists the kernel's filesystems, in order. The kernel does
// not mount /dev itself (Debian's kernels lack DEVTMPFS_MOUNT).
func earlyMounts() []earlyMount {
	return []earlyMount{
		{"proc", "/proc", "proc", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, ""},
		{"sysfs", "/sys", "sysfs", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, ""},
		{"devtmpfs", "/dev", "devtmpfs", unix.MS_NOSUID, "mode=0755"},
		{"devpts", "/dev/pts", "devpts", unix.MS_NOSUID | unix.MS_NOEXEC, "gid=5,mode=620,ptmxmode=666"},
		{"tmpfs", "/run", "tmpfs", unix.MS_NOSUID | unix.MS_NODEV, "mode=0755"},
		{"tmpfs", "/tmp", "tmpfs", unix.MS_NOSUID | unix.MS_NODEV, "mode=1777"},
		{"bpf", "/sys/fs/bpf", "bpf", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, "mode=0700"},
	}
}

// mountEarly mounts the kernel filesystems; one that is already mounted
// is fine, one that fails is logged and skipped.
func mountEarly(log *slog.Logger) {
	for _, m := range earlyMounts() {
		if err := os.MkdirAll(m.target, 0o755); err != nil {
			log.Error("early mount", "target", m.target, "err", err)
			continue
		}
		err := unix.Mount(m.source, m.target, m.fstype, m.flags, m.data)
		if err != nil && !errors.Is(err, unix.EBUSY) {
			log.Error("early mount", "target", m.target, "type", m.fstype, "err", err)
		}
	}
}

// moduleLists are where the image lists the board's modules, one name
// per line (the modules-load.d convention u-root's init follows too).
const moduleLists = "/lib/modules-load.d"

// loadModules loads the board's kernel modules and their dependencies with
// u-root's kmodule, which reads modules.dep from
// /lib/modules/$(uname -r). Names come from /lib/modules-load.d/*.conf and
// the kernel command line's modules_load=a,b.
func loadModules(log *slog.Logger, cmdlineModules string) {
	names := readModuleLists(moduleLists)
	for _, n := range strings.Split(cmdlineModules, ",") {
		if n = strings.TrimSpace(n); n != "" {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		return
	}
	prober, err := kmodule.NewProber(kmodule.ProbeOpts{})
	if err != nil {
		log.Error("kernel modules: no modules.dep; drivers must be built in", "err", err)
		return
	}
	loaded := 0
	for _, name := range names {
		if err := prober.Probe(name, ""); err != nil {
			log.Error("kernel module", "module", name, "err", err)
			continue
		}
		loaded++
	}
	log.Info("kernel modules loaded", "count", loaded, "of", len(names))
}

func readModuleLists(dir string) []string {
	files, _ := filepath.Glob(filepath.Join(dir, "*.conf"))
	var names []string
	for _, file := range files {
		f, err := os.Open(file)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if line != "" && !strings.HasPrefix(line, "#") && !strings.HasPrefix(line, ";") {
				names = append(names, line)
			}
		}
		f.Close()
	}
	return names
}

// SeedFile on the data partition carries entropy from one boot to the
// next, as systemd's random-seed does.
const SeedFile = "random-seed"

const seedSize = 512

// seedEntropy mixes the saved seed into the kernel's pool and credits it
// (the file is written fresh by this box at every boot and shutdown, never
// shipped in the image), then replaces it so the same seed is never used
// twice.
func seedEntropy(log *slog.Logger, path string) {
	if seed, err := os.ReadFile(path); err == nil && len(seed) > 0 {
		if err := addEntropy(seed); err != nil {
			log.Warn("entropy seed not credited", "err", err)
		}
	}
	if err := saveSeed(path); err != nil {
		log.Warn("entropy seed", "err", err)
	}
}

// addEntropy is ioctl(RNDADDENTROPY) on /dev/urandom with a struct
// rand_pool_info {int entropy_count; int buf_size; u32 buf[];}.
func addEntropy(seed []byte) error {
	f, err := os.OpenFile("/dev/urandom", os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	info := make([]byte, 8+len(seed))
	binary.NativeEndian.PutUint32(info[0:], uint32(len(seed)*8))
	binary.NativeEndian.PutUint32(info[4:], uint32(len(seed)))
	copy(info[8:], seed)
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, f.Fd(), unix.RNDADDENTROPY, uintptr(unsafe.Pointer(&info[0]))); errno != 0 {
		return errno
	}
	return nil
}

// saveSeed writes a new seed from the kernel's generator.
func saveSeed(path string) error {
	seed := make([]byte, seedSize)
	if _, err := rand.Read(seed); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, seed, 0o600); err != nil {
		return fmt.Errorf("save seed: %w", err)
	}
	return os.Rename(tmp, path)
}

// setHostname sets the kernel's host name and writes /etc/hostname and
// /etc/hosts so the name resolves locally.
func setHostname(name string) error {
	if err := unix.Sethostname([]byte(name)); err != nil {
		return fmt.Errorf("pid1: hostname: %w", err)
	}
	if err := os.MkdirAll("/etc", 0o755); err != nil {
		return fmt.Errorf("pid1: hostname: %w", err)
	}
	hosts := "127.0.0.1\tlocalhost\n::1\tlocalhost\n127.0.1.1\t" + name + "\n"
	if err := os.WriteFile("/etc/hosts", []byte(hosts), 0o644); err != nil {
		return fmt.Errorf("pid1: hostname: %w", err)
	}
	return os.WriteFile("/etc/hostname", []byte(name+"\n"), 0o644)
}

// reap collects the exit status of orphaned processes that the kernel
// re-parents to init, so they do not linger as zombies, and tells exited
// (may be nil) each PID it collects. Outpost's services start no processes
// of their own; the break-glass shell learns of its exit through exited,
// since under PID 1 this may reap a child before exec.Cmd.Wait could.
func reap(exited func(pid int)) {
	for {
		var status unix.WaitStatus
		pid, err := unix.Wait4(-1, &status, unix.WNOHANG, nil)
		if pid <= 0 || err != nil {
			return
		}
		if exited != nil {
			exited(pid)
		}
	}
}
