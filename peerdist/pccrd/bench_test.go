package pccrd

import "testing"

func BenchmarkParseProbe(b *testing.B) {
	data := readVector(b, "ipxe", "ipxe_probe_v1.xml")
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseProbe(data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMarshalProbeMatch(b *testing.B) {
	m, err := ParseProbeMatch(readVector(b, "derived", "pccrd_v1_probematch_v1seg.xml"))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.Marshal(); err != nil {
			b.Fatal(err)
		}
	}
}
