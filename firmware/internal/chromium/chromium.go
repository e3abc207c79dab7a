// Package chromium runs Debian's headless Chromium for browser tests: it
// finds the browser (installing the "chromium" package with apt-get when
// it is missing and that is possible) and loads pages for their rendered
// DOM or a screenshot.
package chromium

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// Packages are the Debian packages the browser tests need; CI installs
// them (.ci/run), and Find installs them when missing.
func Packages() []string { return []string{"chromium", "fonts-dejavu-core"} }

// Find returns the browser's path, installing it if needed; it skips the
// test, saying why, when that is impossible.
func Find(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if path, err := exec.LookPath(name); err == nil {
			return path
		}
	}
	if os.Geteuid() != 0 {
		t.Skipf("headless Chromium is not installed and installing it needs root: apt-get install %v", Packages())
	}
	if _, err := exec.LookPath("apt-get"); err != nil {
		t.Skipf("headless Chromium is not installed and there is no apt-get to install it (Debian packages %v)", Packages())
	}
	t.Logf("installing %v with apt-get (once per machine)", Packages())
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	var out bytes.Buffer
	for _, args := range [][]string{{"update", "-q"}, append([]string{"install", "-y", "-q", "--no-install-recommends"}, Packages()...)} {
		cmd := exec.CommandContext(ctx, "apt-get", args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			t.Skipf("headless Chromium is not installed and apt-get %s failed (%v): %s", args[0], err, tail(out.Bytes()))
		}
	}
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Skipf("apt-get installed %v but there is no chromium on PATH", Packages())
	}
	return path
}

func tail(b []byte) []byte {
	if len(b) > 2000 {
		return b[len(b)-2000:]
	}
	return b
}

// Browser runs one Chromium.
type Browser struct {
	Path string
	// Dir holds each run's fresh profile.
	Dir string
}

// flags are what works headless in a container without a GPU, a sandbox
// or a network beyond loopback, and keeps Chromium from calling home.
func (b *Browser) flags(name string) []string {
	return []string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--hide-scrollbars", "--user-data-dir=" + filepath.Join(b.Dir, name),
	}
}

func (b *Browser) run(ctx context.Context, name string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, b.Path, append(b.flags(name), args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("chromium: %w: %s", err, tail(stderr.Bytes()))
	}
	return stdout.Bytes(), nil
}

// DumpDOM loads url, lets its scripts run for budget of virtual time
// (network waits do not count against it), and returns the DOM.
func (b *Browser) DumpDOM(ctx context.Context, url string, budget time.Duration) (string, error) {
	out, err := b.run(ctx, "dump", "--virtual-time-budget="+strconv.Itoa(int(budget.Milliseconds())), "--dump-dom", url)
	return string(out), err
}

// Screenshot loads url in a width×height window, lets its scripts run for
// budget, and saves a PNG to file.
func (b *Browser) Screenshot(ctx context.Context, url, file string, width, height int, budget time.Duration) error {
	_, err := b.run(ctx, "shot-"+filepath.Base(file), "--virtual-time-budget="+strconv.Itoa(int(budget.Milliseconds())),
		"--window-size="+strconv.Itoa(width)+","+strconv.Itoa(height), "--screenshot="+file, url)
	if err != nil {
		return err
	}
	if st, err := os.Stat(file); err != nil || st.Size() == 0 {
		return fmt.Errorf("chromium: no screenshot in %s", file)
	}
	return nil
}
