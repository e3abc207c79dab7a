package api

import (
	"bufio"
	"bytes"
	"os"
	"runtime/metrics"
	"strconv"
)

// Memory is what the process and the box use: on a 512 MiB box the
// process's anonymous memory is what competes with the page cache that
// serves blocks.
type Memory struct {
	// ProcessAnonBytes is the process's anonymous resident memory (Go
	// heap, stacks, Badger's tables), RssAnon in /proc/self/status.
	ProcessAnonBytes uint64 `json:"process_anon_bytes"`
	// ProcessFileBytes is resident file-backed memory (the binary,
	// Badger's mapped files), RssFile.
	ProcessFileBytes uint64 `json:"process_file_bytes"`
	// GoHeapBytes is the Go heap in use (live and not yet collected).
	GoHeapBytes uint64 `json:"go_heap_bytes"`
	// SystemTotalBytes and SystemAvailableBytes are from /proc/meminfo.
	SystemTotalBytes     uint64 `json:"system_total_bytes"`
	SystemAvailableBytes uint64 `json:"system_available_bytes"`
}

// readMemory reads the figures from /proc; those it cannot read stay 0.
func readMemory() Memory {
	var m Memory
	kib := procKiB("/proc/self/status", "RssAnon:", "RssFile:")
	m.ProcessAnonBytes, m.ProcessFileBytes = kib[0]<<10, kib[1]<<10
	kib = procKiB("/proc/meminfo", "MemTotal:", "MemAvailable:")
	m.SystemTotalBytes, m.SystemAvailableBytes = kib[0]<<10, kib[1]<<10
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(sample)
	if sample[0].Value.Kind() == metrics.KindUint64 {
		m.GoHeapBytes = sample[0].Value.Uint64()
	}
	return m
}

// procKiB returns the values, in KiB, of the named fields of a /proc file
// of "Name:   value kB" lines.
func procKiB(path string, names ...string) []uint64 {
	out := make([]uint64, len(names))
	data, err := os.ReadFile(path)
	if err != nil {
		return out
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		fields := bytes.Fields(sc.Bytes())
		if len(fields) < 2 {
			continue
		}
		for i, name := range names {
			if string(fields[0]) == name {
				out[i], _ = strconv.ParseUint(string(fields[1]), 10, 64)
			}
		}
	}
	return out
}
