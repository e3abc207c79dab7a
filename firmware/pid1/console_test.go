package pid1

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// openPTY returns a pseudo-terminal's master and its slave's path.
func openPTY(t *testing.T) (*os.File, string) {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	t.Cleanup(func() { master.Close() })
	if err := unix.IoctlSetPointerInt(int(master.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(master.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	return master, fmt.Sprintf("/dev/pts/%d", n)
}

// The shell starts only when Enter is pressed, runs on the console as
// its controlling terminal, and is offered again after it exits.
func TestBreakGlassShell(t *testing.T) {
	if _, err := os.Stat(Shell); err != nil {
		t.Skipf("no %s here", Shell)
	}
	master, slave := openPTY(t)
	g := &breakGlass{log: slog.New(slog.DiscardHandler), device: slave, exited: make(chan int, 64)}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go g.run(ctx)
	// Stand in for init's reaper.
	go func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				reap(g.reaped)
			}
		}
	}()
	out := make(chan string, 256)
	go func() {
		sc := bufio.NewScanner(master)
		for sc.Scan() {
			out <- sc.Text()
		}
		close(out)
	}()
	expect := func(want string) {
		t.Helper()
		timeout := time.After(10 * time.Second)
		for {
			select {
			case line, ok := <-out:
				if !ok {
					t.Fatalf("console closed before %q", want)
				}
				if strings.Contains(line, want) && !strings.Contains(line, "echo") {
					return
				}
			case <-timeout:
				t.Fatalf("no %q on the console", want)
			}
		}
	}
	for round := 1; round <= 2; round++ {
		master.WriteString("\n")
		expect("break-glass shell")
		// A controlling terminal: the shell's session owns the tty.
		fmt.Fprintf(master, "echo round-%d; (: < /dev/tty) && echo tty-ok\n", round)
		expect(fmt.Sprintf("round-%d", round))
		expect("tty-ok")
		master.WriteString("exit\n")
	}
}
