// Package allocs measures how many bytes a function allocates, so decoder
// tests can prove that a length field claiming gigabytes does not make the
// decoder allocate gigabytes.
package allocs

import (
	"runtime"
	"testing"
)

// Bytes returns the bytes allocated on the heap while f ran. Run it from a
// test that is not parallel with others, or the figure includes their
// allocations too.
func Bytes(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// Bounded fails the test if decoding input with decode allocates more than
// factor times its length plus slack bytes. The slack covers fixed costs
// (error values, small structs) that do not grow with the input. Bytes
// counts the whole process, so an occasional runtime allocation lands in a
// measurement: the least of a few runs is what counts.
func Bounded(tb testing.TB, name string, input []byte, factor, slack uint64, decode func([]byte)) {
	tb.Helper()
	got := Bytes(func() { decode(input) })
	for range 4 {
		got = min(got, Bytes(func() { decode(input) }))
	}
	if limit := factor*uint64(len(input)) + slack; got > limit {
		tb.Errorf("%s: decoding %d bytes allocated %d bytes, more than %d×input+%d = %d",
			name, len(input), got, factor, slack, limit)
	}
}
