package pchc

import (
	"bytes"
	"encoding/binary"
	"reflect"
	"strings"
	"testing"

	"github.com/outpost-appliance/outpost/peerdist/vectors"
)

// expectedRequests maps a vector's name (without its source prefix) to the
// message the READMEs say it holds. Every pchc_* request vector must have
// an entry, so a new vector cannot go untested.
func expectedRequests(t *testing.T) map[string]Message {
	t.Helper()
	ipxe := loadIPXEExpected(t)
	ms := loadMSTestMultipleBlocks(t)
	smb := [ContentTagSize]byte(vectors.HexFile(t, "peerdist-vectors", "spec", "pchc_content_tag_smb.hex"))
	v2seg := func(i int) SegmentDescriptor {
		s := ipxe.V2.Segments[i]
		return SegmentDescriptor{
			BlockSize: s.CbSegment, SegmentSize: s.CbSegment,
			ContentTag: smb[:], HashAlgorithm: HashTruncatedSHA512,
			HoHoDk: [HoHoDkSize]byte(vectors.Hex(t, s.HoHoDk)),
		}
	}

	// PCHC wraps the IIS V1 content information rewritten as the spec
	// demands: dwReadBytesInLastSegment = cbSegment (README §3).
	ipxeInfo := bytes.Clone(vectors.Read(t, "peerdist-vectors", "ipxe", "iis85_ci_v1.bin"))
	binary.LittleEndian.PutUint32(ipxeInfo[10:14], ipxe.V1.Segments[0].CbSegment)
	msInfo := vectors.Read(t, "mstest-vectors", "derived", "v1_MultipleBlocks_contentinfo.bin")
	// The suite writes dwOffsetInFirstSegment (bytes 6-9) again where
	// dwReadBytesInLastSegment (bytes 10-13) belongs (§9 row 18).
	msSuiteInfo := bytes.Clone(msInfo)
	copy(msSuiteInfo[10:14], msInfo[6:10])

	const mstestPort = 8282 // 0x205a
	return map[string]Message{
		"pchc_initial_offer_v1_port80": InitialOffer{
			Major: 1, Port: 80, HoHoDk: vectors.Hex(t, ipxe.V1.Segments[0].HoHoDk),
		},
		"pchc_segment_info_v1_port80": SegmentInfo{
			Major: 1, Port: 80, ContentTag: smb, SegmentInformation: ipxeInfo,
		},
		"pchc_batched_offer_v2_port80": BatchedOffer{
			Port: 80, Segments: []SegmentDescriptor{v2seg(0), v2seg(1)},
		},
		"pchc_initial_offer_v1": InitialOffer{
			Major: 1, Port: mstestPort, HoHoDk: vectors.Hex(t, ms.V1.Segments[0].HoHoDk),
		},
		"pchc_segment_info_v1_spec": SegmentInfo{
			Major: 1, Port: mstestPort, SegmentInformation: msInfo,
		},
		"pchc_segment_info_v1_as_suite_sends": SegmentInfo{
			Major: 1, Port: mstestPort, SegmentInformation: msSuiteInfo,
		},
		"pchc_batched_offer_v2": BatchedOffer{
			Port: mstestPort, Segments: []SegmentDescriptor{{
				BlockSize: ms.Size, SegmentSize: ms.Size,
				ContentTag: make([]byte, 16), HashAlgorithm: HashTruncatedSHA512,
				HoHoDk: [HoHoDkSize]byte(vectors.Hex(t, ms.V2.HoHoDk)),
			}},
		},
	}
}

func baseName(name string) string { return name[strings.Index(name, "/")+1:] }

func TestVectorsDecodeAndReencode(t *testing.T) {
	want := expectedRequests(t)
	for _, v := range pchcVectors(t) {
		if v.isResponse() {
			continue
		}
		t.Run(v.Name, func(t *testing.T) {
			expected, ok := want[baseName(v.Name)]
			if !ok {
				t.Fatalf("no expectation for vector %s; add one", v.Name)
			}
			got, err := ParseRequest(v.Data)
			if err != nil {
				t.Fatalf("ParseRequest: %v", err)
			}
			if !reflect.DeepEqual(got, expected) {
				t.Errorf("decoded\n %+v\nwant\n %+v", got, expected)
			}
			encoded, err := got.Marshal()
			if err != nil {
				t.Fatalf("Marshal: %v", err)
			}
			if !bytes.Equal(encoded, v.Data) {
				t.Errorf("re-encoded\n %x\nwant\n %x", encoded, v.Data)
			}
			fromExpected, err := expected.Marshal()
			if err != nil || !bytes.Equal(fromExpected, v.Data) {
				t.Errorf("encoding the README's values gave %x, %v; want %x", fromExpected, err, v.Data)
			}
		})
	}
}

func TestVectorFieldsNamedInREADMEs(t *testing.T) {
	ms := loadMSTestMultipleBlocks(t)
	if ms.Size != 0x13c00 {
		t.Errorf("MultipleBlocks.txt size %#x, README says 0x13c00 (80 896)", ms.Size)
	}
	batch := mustParse[BatchedOffer](t, requestVector(t, "peerdist/pchc_batched_offer_v2_port80"))
	if len(batch.Segments) != 2 || batch.Segments[0].SegmentSize != 39390 || batch.Segments[1].SegmentSize != 60320 {
		t.Errorf("iPXE batch sizes: %+v, want 39390 and 60320", batch.Segments)
	}
	for _, d := range batch.Segments {
		if d.HashAlgorithm != 0x04 || TagName(d.ContentTag) != TagSMB {
			t.Errorf("descriptor algo %#x tag %s, want 0x04 SMB", d.HashAlgorithm, TagName(d.ContentTag))
		}
	}
	msBatch := mustParse[BatchedOffer](t, requestVector(t, "mstest/pchc_batched_offer_v2"))
	if msBatch.Port != 0x205a || msBatch.Segments[0].BlockSize != 0x13c00 || TagName(msBatch.Segments[0].ContentTag) != TagOther {
		t.Errorf("suite batch %+v, want port 0x205a, BlockSize 0x13c00, tag Other", msBatch)
	}
	info := mustParse[SegmentInfo](t, requestVector(t, "peerdist/pchc_segment_info_v1_port80"))
	if TagName(info.ContentTag[:]) != TagSMB {
		t.Errorf("segment info tag %x is not the SMB tag", info.ContentTag)
	}
}

func mustParse[M Message](t *testing.T, body []byte) M {
	t.Helper()
	m, err := ParseRequest(body)
	if err != nil {
		t.Fatalf("ParseRequest: %v", err)
	}
	typed, ok := m.(M)
	if !ok {
		t.Fatalf("ParseRequest returned %T", m)
	}
	return typed
}

func TestVectorResponses(t *testing.T) {
	want := map[string]ResponseCode{
		"pchc_response_ok":         ResponseOK,
		"pchc_response_interested": ResponseInterested,
	}
	for _, v := range pchcVectors(t) {
		if !v.isResponse() {
			continue
		}
		t.Run(v.Name, func(t *testing.T) {
			code, ok := want[baseName(v.Name)]
			if !ok {
				t.Fatalf("no expectation for vector %s", v.Name)
			}
			got, err := ParseResponse(v.Data)
			if err != nil || got.Code != code {
				t.Fatalf("ParseResponse = %v, %v; want code %v", got, err, code)
			}
			encoded, err := got.Marshal()
			if err != nil || !bytes.Equal(encoded, v.Data) {
				t.Errorf("Marshal = %x, %v; want %x", encoded, err, v.Data)
			}
		})
	}
}

// The .bin files must be the same bytes as the golden table rows.
func TestVectorBinFilesMatchTable(t *testing.T) {
	all := pchcVectors(t)
	table := map[string][]byte{}
	for _, v := range all {
		if strings.HasPrefix(v.Name, "peerdist/") {
			table[baseName(v.Name)] = v.Data
		}
	}
	bins := 0
	for _, v := range all {
		if !strings.HasPrefix(v.Name, "bin/") {
			continue
		}
		bins++
		if row, ok := table[baseName(v.Name)]; !ok || !bytes.Equal(row, v.Data) {
			t.Errorf("%s differs from its golden_messages.tsv row", v.Name)
		}
	}
	if bins == 0 {
		t.Error("no pchc_*.bin vectors found")
	}
}
