package api

import (
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// HostBoard names the hardware: the device-tree model on ARM boards
// ("Raspberry Pi 4 Model B Rev 1.4"), else the DMI product name on x86
// ("Standard PC (Q35 + ICH9, 2009)" in QEMU), else "".
func HostBoard() string {
	for _, path := range []string{"/proc/device-tree/model", "/sys/class/dmi/id/product_name"} {
		if b, err := os.ReadFile(path); err == nil {
			if s := strings.TrimSpace(strings.TrimRight(string(b), "\x00")); s != "" {
				return s
			}
		}
	}
	return ""
}

// KernelTimeSync reads the kernel's clock discipline (adjtimex): synced
// when an NTP daemon (or Outpost's NTP service, where it disciplines the
// kernel clock) keeps it in step.
func KernelTimeSync() TimeSync {
	ts := TimeSync{Now: time.Now().UTC(), Source: "kernel"}
	var tx unix.Timex
	state, err := unix.Adjtimex(&tx)
	if err != nil {
		ts.Source = "unknown"
		return ts
	}
	ts.Synced = state != unix.TIME_ERROR && tx.Status&unix.STA_UNSYNC == 0
	if ts.Synced {
		ts.EstimatedErrorSeconds = float64(tx.Esterror) / 1e6
	}
	return ts
}
