package pchc

// Names TagName returns for the content tags Windows components put in
// offers (MS-PCHC footnote <8>); a hosted cache keeps statistics per name.
const (
	TagWinINet = "WinINet"
	TagWebIO   = "WebIO"
	TagBITS    = "BITS-4.0"
	TagSMB     = "SMB"
	TagOther   = "Other"
)

// SMBContentTag is the 16 binary bytes the Windows SMB stack uses as its
// content tag (MS-PCHC footnote <8>). It is a string so it can be constant.
const SMBContentTag = "\x35\xdb\x04\x5d\x14\x23\x45\x53\xa0\x51\x0d\xc2\xe1\x5e\x6c\x4c"

// NumTags is how many names TagName returns.
const NumTags = 5

// TagNames lists the names TagName returns, TagOther last: a hosted cache
// keeps its statistics per name.
func TagNames() [NumTags]string {
	return [...]string{TagWinINet, TagWebIO, TagBITS, TagSMB, TagOther}
}

// TagIndex returns the position of a tag name in TagNames; a name that is
// not there counts as TagOther.
func TagIndex(name string) int {
	names := TagNames()
	for i, n := range names {
		if n == name {
			return i
		}
	}
	return NumTags - 1
}

// TagName classifies a content tag as TagWinINet, TagWebIO, TagBITS, TagSMB
// or TagOther.
//
// How Windows pads the ASCII names to 16 bytes is undocumented
// (protocols.md §4.2, §8 item 6), so an ASCII name matches when the tag
// starts with it and every byte after it is NUL or space, which also covers
// an unpadded tag of exactly the name (BATCHED_OFFER tags have a variable
// size). The same rule is applied to the name in UTF-16LE, since Windows
// keeps such strings as wide characters and "BITS-4.0" in UTF-16LE fills
// the 16 bytes exactly. Matching is case-sensitive. SMB must match all 16
// bytes exactly.
func TagName(tag []byte) string {
	if string(tag) == SMBContentTag {
		return TagSMB
	}
	for _, name := range [...]string{TagWinINet, TagWebIO, TagBITS} {
		if matchPaddedName(tag, name, 1) || matchPaddedName(tag, name, 2) {
			return name
		}
	}
	return TagOther
}

// matchPaddedName reports whether tag holds the ASCII name, one character
// per width bytes (1 for ASCII, 2 for UTF-16LE), followed only by NUL or
// space bytes. It compares in place so that counting tags allocates nothing.
func matchPaddedName(tag []byte, name string, width int) bool {
	if len(tag) < width*len(name) {
		return false
	}
	for i := range len(name) {
		char := tag[i*width : (i+1)*width]
		if char[0] != name[i] || (width == 2 && char[1] != 0) {
			return false
		}
	}
	for _, b := range tag[width*len(name):] {
		if b != 0 && b != ' ' {
			return false
		}
	}
	return true
}

// MakeContentTag builds the 16-byte tag for name: SMBContentTag for TagSMB,
// otherwise the ASCII name padded with NUL bytes (truncated at 16 bytes),
// which TagName maps back to the same name.
func MakeContentTag(name string) [ContentTagSize]byte {
	var tag [ContentTagSize]byte
	if name == TagSMB {
		copy(tag[:], SMBContentTag)
		return tag
	}
	copy(tag[:], name)
	return tag
}
