package pid1

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
)

// The break-glass shell: with [console] shell on, init offers u-root's
// rush on the serial console. Nothing runs until someone presses Enter
// there, so the console shows the log undisturbed until then; when the
// shell exits, the offer stands again. The shell gets the console as its
// controlling terminal (job control, Ctrl-C) in a session of its own.

// Shell is the break-glass shell in the image (u-root's rush, see
// image/build.BreakGlass).
const Shell = "/bin/sh"

// consoleDevice returns the device of the kernel's primary console (the
// last of /sys/class/tty/console/active, e.g. ttyS0), or an error when
// there is no serial console to offer a shell on.
func consoleDevice() (string, error) {
	active, err := os.ReadFile("/sys/class/tty/console/active")
	if err != nil {
		return "", fmt.Errorf("pid1: console: %w", err)
	}
	names := strings.Fields(string(active))
	if len(names) == 0 {
		return "", fmt.Errorf("pid1: console: no active console")
	}
	return filepath.Join("/dev", names[len(names)-1]), nil
}

// breakGlass offers the shell on a console device.
type breakGlass struct {
	log    *slog.Logger
	device string
	// exited receives the PIDs init reaps: under PID 1 the reaper, not
	// exec.Cmd.Wait, collects children, so the shell's exit comes here.
	exited chan int
}

func newBreakGlass(log *slog.Logger) (*breakGlass, error) {
	if _, err := os.Stat(Shell); err != nil {
		return nil, fmt.Errorf("pid1: break-glass shell: %w", err)
	}
	device, err := consoleDevice()
	if err != nil {
		return nil, err
	}
	return &breakGlass{log: log, device: device, exited: make(chan int, 64)}, nil
}

// reaped is the reaper's callback; it never blocks.
func (g *breakGlass) reaped(pid int) {
	select {
	case g.exited <- pid:
	default:
	}
}

// run waits for Enter on the console, runs the shell there, and again,
// until ctx ends.
func (g *breakGlass) run(ctx context.Context) {
	tty, err := os.OpenFile(g.device, os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		g.log.Warn("break-glass shell unavailable", "device", g.device, "err", err)
		return
	}
	defer tty.Close()
	lines := bufio.NewReader(tty)
	for ctx.Err() == nil {
		if _, err := lines.ReadString('\n'); err != nil {
			g.log.Warn("break-glass shell: reading the console", "device", g.device, "err", err)
			return
		}
		if ctx.Err() != nil {
			return
		}
		fmt.Fprintf(tty, "\r\noutpost break-glass shell (rush; ls, cat, ip, dmesg, mount in /bin). 'exit' returns to the log.\r\n")
		cmd := exec.Command(Shell)
		cmd.Dir = "/"
		cmd.Env = []string{"PATH=/bin", "HOME=/root", "TERM=linux"}
		cmd.Stdin, cmd.Stdout, cmd.Stderr = tty, tty, tty
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
		if err := cmd.Start(); err != nil {
			g.log.Error("break-glass shell", "err", err)
			continue
		}
		g.log.Warn("break-glass shell started on the console", "device", g.device, "pid", cmd.Process.Pid)
		g.waitExit(ctx, cmd.Process.Pid)
		g.log.Info("break-glass shell exited", "pid", cmd.Process.Pid)
	}
}

func (g *breakGlass) waitExit(ctx context.Context, pid int) {
	for {
		select {
		case p := <-g.exited:
			if p == pid {
				return
			}
		case <-ctx.Done():
			syscall.Kill(-pid, syscall.SIGHUP) // its session: the shell and what it runs
			return
		}
	}
}
