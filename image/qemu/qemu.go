// Package qemu starts a board's image under QEMU (software emulation is
// enough) and follows its serial console, for the boot test and `make run`.
package qemu

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/outpost-appliance/outpost/image/board"
)

// Machine is one guest to start.
type Machine struct {
	Board     *board.Board
	Kernel    string   // -kernel (empty: boot the disk through UEFI firmware)
	Initramfs string   // -initrd
	Disk      string   // raw disk image attached as virtio-blk ("" for none)
	Firmware  string   // UEFI code for disk boots (OVMF / AAVMF)
	Vars      string   // a writable copy of the UEFI variable store
	Append    string   // added to the board's kernel command line
	Net       []string // -netdev and -device arguments
	Prefix    []string // run QEMU under this command (ip netns exec NS)
}

// Args returns the command line, Prefix included.
func (m Machine) Args() []string {
	b := m.Board
	args := append([]string{}, m.Prefix...)
	args = append(args, b.QEMU.System)
	args = append(args, b.QEMU.Machine...)
	args = append(args, "-nographic", "-m", fmt.Sprint(b.QEMU.MemoryMiB), "-smp", "1",
		"-object", "rng-random,id=rng0,filename=/dev/urandom", "-device", "virtio-rng-pci,rng=rng0")
	if m.Kernel != "" {
		args = append(args, "-kernel", m.Kernel, "-initrd", m.Initramfs,
			"-append", strings.TrimSpace(b.Kernel.Cmdline+" "+m.Append))
	}
	if m.Firmware != "" {
		args = append(args, "-drive", "if=pflash,format=raw,readonly=on,file="+m.Firmware)
		if m.Vars != "" {
			args = append(args, "-drive", "if=pflash,format=raw,file="+m.Vars)
		}
	}
	if m.Disk != "" {
		args = append(args, "-drive", "file="+m.Disk+",if=virtio,format=raw")
	}
	return append(args, m.Net...)
}

// Guest is a running QEMU with its console collected.
type Guest struct {
	cmd     *exec.Cmd
	stdin   io.WriteCloser // the serial console's input
	started time.Time
	done    chan struct{}
	err     error

	mu      sync.Mutex
	lines   []string
	changed chan struct{} // closed and replaced on every new line
}

// Start runs the machine; console lines also go to echo (may be nil).
// Cancelling ctx kills QEMU.
func Start(ctx context.Context, m Machine, echo io.Writer) (*Guest, error) {
	args := m.Args()
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = cmd.Stdout
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	g := &Guest{cmd: cmd, stdin: stdin, done: make(chan struct{}), changed: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("qemu: start %s: %w", args[0], err)
	}
	g.started = time.Now()
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			if echo != nil {
				fmt.Fprintf(echo, "%7.2fs | %s\n", time.Since(g.started).Seconds(), line)
			}
			g.mu.Lock()
			g.lines = append(g.lines, line)
			close(g.changed)
			g.changed = make(chan struct{})
			g.mu.Unlock()
		}
		g.err = cmd.Wait()
		close(g.done)
	}()
	return g, nil
}

// Type sends keystrokes to the serial console (-nographic: QEMU's stdin;
// Ctrl-A is its escape).
func (g *Guest) Type(s string) error {
	_, err := io.WriteString(g.stdin, s)
	return err
}

// Started is when QEMU was started.
func (g *Guest) Started() time.Time { return g.started }

// WaitFor waits for a console line at index from or later matching re and
// returns it and the index after it. It fails if QEMU exits first.
func (g *Guest) WaitFor(ctx context.Context, re *regexp.Regexp, from int) (string, int, error) {
	for {
		g.mu.Lock()
		for i := from; i < len(g.lines); i++ {
			if re.MatchString(g.lines[i]) {
				line := g.lines[i]
				g.mu.Unlock()
				return line, i + 1, nil
			}
		}
		from = len(g.lines)
		changed := g.changed
		g.mu.Unlock()
		select {
		case <-changed:
		case <-g.done:
			return "", from, fmt.Errorf("qemu exited (%v) before a console line matched %q", g.err, re)
		case <-ctx.Done():
			return "", from, fmt.Errorf("waiting for %q: %w", re, ctx.Err())
		}
	}
}

// Wait waits for QEMU to exit and returns its exit error.
func (g *Guest) Wait(ctx context.Context) error {
	select {
	case <-g.done:
		return g.err
	case <-ctx.Done():
		return fmt.Errorf("qemu still running: %w", ctx.Err())
	}
}

// Console returns the console so far.
func (g *Guest) Console() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return strings.Join(g.lines, "\n")
}

// Ready matches the appliance's ready line: it contains "outpost" and
// "ready" once every service runs.
var Ready = regexp.MustCompile(`\boutpost\b.*\bready\b`)
