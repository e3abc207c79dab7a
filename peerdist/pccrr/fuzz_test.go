package pccrr

import (
	"reflect"
	"testing"
)

// Fuzz targets: decoding never panics, and whatever decodes re-encodes
// (encoder and decoder share their rules) and decodes to an equal message.
// Seeds: every pccrr_* vector, some hand-made edge cases, and every
// Extensible Blob found in them.

func addVectorSeeds(f *testing.F, response bool) {
	for _, g := range goldenPCCRR(f) {
		if _, err := ParseResponse(g.Data); (err == nil) == response {
			f.Add(g.Data)
		}
	}
}

func checkRoundTrip(t *testing.T, m Message, response bool) {
	again, err := m.Marshal()
	if err != nil {
		t.Fatalf("decoded %+v but cannot re-encode it: %v", m, err)
	}
	back, err := parseAny(again, response)
	if err != nil {
		t.Fatalf("re-encoded %x does not decode: %v", again, err)
	}
	if !reflect.DeepEqual(back, m) {
		t.Fatalf("round trip changed the message\nfirst  %+v\nsecond %+v", m, back)
	}
}

func FuzzParseRequest(f *testing.F) {
	addVectorSeeds(f, false)
	f.Add(raw(MsgGetBlks, 1, 3, []byte{1, 2, 3, 0}, 2, 5, 1, 0, 3, 0, 1, 0))
	f.Add(raw(MsgGetSegList, 3, iv16, 2, 1, []byte{1, 0, 0, 0}, 0, 5, []byte{0, 1, 3, 1, 0}))
	f.Add(raw(MsgGetBlkList, 0, 0, 1, 511, 1))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseRequest(b)
		if err != nil {
			return
		}
		if m.Type().IsResponse() {
			t.Fatalf("ParseRequest returned a %v", m.Type())
		}
		checkRoundTrip(t, m, false)
	})
}

func FuzzParseResponse(f *testing.F) {
	addVectorSeeds(f, true)
	f.Add(raw(MsgBlk, 0, 5, []byte{1, 2, 3, 4, 5, 0, 0, 0}, 1, 2, 4, []byte{9, 9, 9, 9}, 1, []byte{7, 0, 0, 0}, 0))
	f.Add(raw(MsgBlkList, 2, 1, []byte{1, 0, 0, 0}, 2, 0, 1, 511, 1, 3))
	f.Add(raw(MsgSegList, 1, iv16, 1, 0xfffffffe, 2, 0))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseResponse(b)
		if err != nil {
			return
		}
		if !m.Type().IsResponse() {
			t.Fatalf("ParseResponse returned a %v", m.Type())
		}
		checkRoundTrip(t, m, true)
		if blk, ok := m.(*Blk); ok {
			head, err := blk.AppendHead(nil)
			if err != nil {
				t.Fatal(err)
			}
			whole, _ := blk.Marshal()
			if got := string(head) + string(blk.Block) + string(blk.AppendTail(nil)); got != string(whole) {
				t.Fatalf("head+block+tail differs from Marshal")
			}
		}
	})
}

func FuzzParseSegmentAges(f *testing.F) {
	for _, g := range goldenPCCRR(f) {
		m, err := ParseResponse(g.Data)
		if err != nil {
			m, _ = ParseRequest(g.Data)
		}
		switch m := m.(type) {
		case *SegList:
			f.Add(m.ExtensibleBlob)
		case *GetSegList:
			f.Add(m.ExtensibleBlob)
		}
	}
	f.Add([]byte{0, 1, 4, 2, 0, 0xff, 0xff, 0xff, 1, 0, 0, 0})
	f.Add([]byte{0, 1, 3, 255})
	f.Fuzz(func(t *testing.T, blob []byte) {
		a, err := ParseSegmentAges(blob)
		if err != nil {
			return
		}
		again, err := a.Marshal()
		if err != nil {
			t.Fatalf("decoded %+v but cannot re-encode it: %v", a, err)
		}
		back, err := ParseSegmentAges(again)
		if err != nil || !reflect.DeepEqual(back, a) {
			t.Fatalf("round trip: %+v, %v; want %+v", back, err, a)
		}
		for i := range a.Ages {
			if d := a.Duration(i); d < 0 {
				t.Fatalf("negative age %v", d)
			}
		}
	})
}
