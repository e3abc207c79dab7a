package pchc

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

func FuzzParseRequest(f *testing.F) {
	for _, v := range pchcVectors(f) {
		if !v.isResponse() {
			f.Add(v.Data)
		}
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		m, err := ParseRequest(body)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		encoded, err := m.Marshal()
		if err != nil {
			t.Fatalf("decoded %+v but cannot encode it: %v", m, err)
		}
		if want := zeroPadding(body); !bytes.Equal(encoded, want) {
			t.Fatalf("re-encoded %x, want %x", encoded, want)
		}
		again, err := ParseRequest(encoded)
		if err != nil || !reflect.DeepEqual(again, m) {
			t.Fatalf("second decode %+v, %v; want %+v", again, err, m)
		}
	})
}

func FuzzParseResponse(f *testing.F) {
	for _, v := range pchcVectors(f) {
		if v.isResponse() {
			f.Add(v.Data)
		}
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := ParseResponse(body)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		encoded, err := r.Marshal()
		if err != nil || !bytes.Equal(encoded, body) {
			t.Fatalf("re-encoded %x, %v; want %x", encoded, err, body)
		}
		again, err := ParseResponse(encoded)
		if err != nil || again != r {
			t.Fatalf("second decode %v, %v; want %v", again, err, r)
		}
	})
}
