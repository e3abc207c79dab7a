package pchc

import (
	"testing"

	"github.com/outpost-appliance/outpost/peerdist/vectors"
)

func TestSMBContentTagMatchesSpecVector(t *testing.T) {
	if got := vectors.HexFile(t, "peerdist-vectors", "spec", "pchc_content_tag_smb.hex"); string(got) != SMBContentTag {
		t.Errorf("spec/pchc_content_tag_smb.hex = %x, SMBContentTag = %x", got, SMBContentTag)
	}
}

func TestTagName(t *testing.T) {
	wide := func(s string) string { return string(utf16LEForTest(s)) }
	tests := []struct {
		tag  string
		want string
	}{
		{SMBContentTag, TagSMB},
		{"WinINet\x00\x00\x00\x00\x00\x00\x00\x00\x00", TagWinINet},
		{"WinINet", TagWinINet}, // unpadded, as a BATCHED_OFFER tag may be
		{"WinINet         ", TagWinINet},
		{"WinINet\x00 \x00 \x00 \x00 \x00", TagWinINet},
		{"WebIO\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00", TagWebIO},
		{"BITS-4.0\x00\x00\x00\x00\x00\x00\x00\x00", TagBITS},
		{"BITS-4.0", TagBITS},
		{wide("BITS-4.0"), TagBITS}, // exactly 16 bytes in UTF-16LE
		{wide("WinINet") + "\x00\x00", TagWinINet},
		{wide("WebIO") + "\x00\x00\x00\x00\x00\x00", TagWebIO},
		{"wininet\x00\x00\x00\x00\x00\x00\x00\x00\x00", TagOther}, // case-sensitive
		{"WinINetX\x00\x00\x00\x00\x00\x00\x00\x00", TagOther},
		{"WinINet\x00\x00\x00\x00\x00\x00\x00\x00\x01", TagOther},
		{"WinINe", TagOther},
		{"W\x00i\x00n\x00I\x00N\x00e\x00t\x01", TagOther},
		{SMBContentTag[:15], TagOther},
		{SMBContentTag + "\x00", TagOther},
		{"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00", TagOther},
		{"", TagOther},
		{"SMB", TagOther},
	}
	for _, tt := range tests {
		if got := TagName([]byte(tt.tag)); got != tt.want {
			t.Errorf("TagName(%q) = %s, want %s", tt.tag, got, tt.want)
		}
	}
}

func TestMakeContentTagRoundTrip(t *testing.T) {
	for _, name := range []string{TagWinINet, TagWebIO, TagBITS, TagSMB} {
		tag := MakeContentTag(name)
		if got := TagName(tag[:]); got != name {
			t.Errorf("TagName(MakeContentTag(%q)) = %s", name, got)
		}
	}
	if tag := MakeContentTag("a name longer than sixteen bytes"); string(tag[:]) != "a name longer th" {
		t.Errorf("long name gave %q, want it cut at 16 bytes", tag)
	}
}

func TestTagNameAllocatesNothing(t *testing.T) {
	tag := MakeContentTag(TagBITS)
	if n := testing.AllocsPerRun(100, func() { TagName(tag[:]) }); n != 0 {
		t.Errorf("TagName allocates %v times", n)
	}
}

func utf16LEForTest(ascii string) []byte {
	out := make([]byte, 0, 2*len(ascii))
	for i := range len(ascii) {
		out = append(out, ascii[i], 0)
	}
	return out
}

func TestTagIndex(t *testing.T) {
	for i, name := range TagNames() {
		if TagIndex(name) != i {
			t.Errorf("TagIndex(%q) = %d, want %d", name, TagIndex(name), i)
		}
	}
	if TagIndex("something else") != NumTags-1 || TagNames()[NumTags-1] != TagOther {
		t.Error("an unknown name must count as Other")
	}
}
