package pccrc

// V2 segments are content-defined: a boundary falls where the data looks a
// certain way, so an insertion early in a file moves only nearby boundaries
// and later segments keep their IDs (and stay cached). Windows' algorithm is
// unpublished (protocols.md §8 item 7); nothing needs to reproduce it, since
// segments are identified by their hashes alone. Ours is a gear-hash
// chunker in the style of FastCDC: no boundary before minChunk (which also
// skips scanning those bytes), a harder cut condition up to avgChunk and an
// easier one after it, which narrows the size spread, and a forced cut at
// the V2 maximum of 128 KiB.
const (
	minChunk = 32 << 10
	avgChunk = 64 << 10
	maxChunk = MaxSegmentSizeV2
	// The fingerprint's high bits depend on the last 64 bytes, its low bits
	// on only the last few, so the cut conditions test high bits.
	maskHard = (1<<18 - 1) << (64 - 18)
	maskEasy = (1<<14 - 1) << (64 - 14)
)

// gearTable maps each byte to a pseudo-random 64-bit value. It is a fixed
// function of a fixed seed (splitmix64), so the boundaries, and with them the
// segment IDs of generated content information, never change between
// releases. It is written once at package initialisation and only read.
var gearTable = func() (t [256]uint64) {
	state := uint64(0x4f7574706f737443) // "OutpostC"
	for i := range t {
		state += 0x9e3779b97f4a7c15
		z := state
		z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
		z = (z ^ z>>27) * 0x94d049bb133111eb
		t[i] = z ^ z>>31
	}
	return t
}()

// cutPoint returns the length of the segment that starts at data[0]. If
// atEOF is false and data is shorter than the maximum segment, it returns 0
// when it cannot decide yet (more data may move the boundary).
func cutPoint(data []byte, atEOF bool) int {
	n := len(data)
	if n == 0 {
		return 0
	}
	if n < maxChunk && !atEOF {
		// A boundary found in data would be final, but scanning twice is
		// wasted work: wait for a full window.
		return 0
	}
	if n <= minChunk {
		return n
	}
	n = min(n, maxChunk)
	var fp uint64
	i := minChunk
	for limit := min(n, avgChunk); i < limit; i++ {
		fp = fp<<1 + gearTable[data[i]]
		if fp&maskHard == 0 {
			return i + 1
		}
	}
	for ; i < n; i++ {
		fp = fp<<1 + gearTable[data[i]]
		if fp&maskEasy == 0 {
			return i + 1
		}
	}
	return n
}
