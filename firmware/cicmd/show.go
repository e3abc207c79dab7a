package cicmd

import (
	"encoding/hex"
	"encoding/json"
	"flag"
	"io"

	"github.com/outpost-appliance/outpost/firmware/cli"
	"github.com/outpost-appliance/outpost/peerdist/pccrc"
)

// shownInfo is the JSON form of content information printed by `ci show`.
// Hashes are lower-case hex; offsets and sizes are bytes.
type shownInfo struct {
	Version       int    `json:"version"`
	HashAlgorithm string `json:"hash_algorithm"`
	Range         struct {
		Start  uint64 `json:"start"`
		End    uint64 `json:"end"`
		Length uint64 `json:"length"`
	} `json:"range"`
	OffsetInFirstSegment   uint32         `json:"offset_in_first_segment"`
	ReadBytesInLastSegment *uint32        `json:"read_bytes_in_last_segment,omitempty"`
	IndexOfFirstSegment    *uint64        `json:"index_of_first_segment,omitempty"`
	LengthOfRange          *uint64        `json:"length_of_range,omitempty"`
	Segments               []shownSegment `json:"segments"`
}

type shownSegment struct {
	Index     uint64       `json:"index"`
	Offset    uint64       `json:"offset"`
	Size      uint32       `json:"size"`
	HoD       string       `json:"hod"`
	Kp        string       `json:"kp"`
	SegmentID string       `json:"segment_id"`
	Blocks    []shownBlock `json:"blocks,omitempty"`
}

type shownBlock struct {
	Index  int    `json:"index"`
	Offset uint64 `json:"offset"`
	Size   uint32 `json:"size"`
	Hash   string `json:"hash"`
}

func describe(ci *pccrc.Info) shownInfo {
	out := shownInfo{
		Version:              int(ci.Version),
		HashAlgorithm:        ci.Algo.String(),
		OffsetInFirstSegment: ci.OffsetInFirstSegment,
		Segments:             make([]shownSegment, len(ci.Segments)),
	}
	out.Range.Start, out.Range.End = ci.Range()
	out.Range.Length = out.Range.End - out.Range.Start
	if ci.Version == pccrc.V1 {
		out.ReadBytesInLastSegment = &ci.ReadBytesInLastSegment
	} else {
		out.IndexOfFirstSegment = &ci.IndexOfFirstSegment
		out.LengthOfRange = &ci.LengthOfRange
	}
	for i, s := range ci.Segments {
		seg := shownSegment{
			Index:     ci.IndexOfFirstSegment + uint64(i),
			Offset:    s.Offset,
			Size:      s.Size,
			HoD:       hex.EncodeToString(s.HashOfData),
			Kp:        hex.EncodeToString(s.Secret),
			SegmentID: hex.EncodeToString(ci.ID(i)),
		}
		if ci.Version == pccrc.V1 {
			// V1 segments are 32 MiB apart, so the file index follows from
			// the offset.
			seg.Index = s.Offset / pccrc.SegmentSizeV1
			for b, h := range s.BlockHashes {
				off, n := pccrc.BlockSpan(s.Size, b)
				seg.Blocks = append(seg.Blocks, shownBlock{Index: b, Offset: s.Offset + uint64(off), Size: n, Hash: hex.EncodeToString(h)})
			}
		}
		out.Segments[i] = seg
	}
	return out
}

func runShow(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("outpost ci show", flag.ContinueOnError)
	fs.SetOutput(stderr)
	files, err := cli.ParseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(files) != 1 {
		return cli.Usagef("show takes exactly one FILE.ci")
	}
	ci, err := readInfo(files[0])
	if err != nil {
		return err
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(describe(ci))
}
