package pccrc

import (
	"context"
	"io"
	"math/rand/v2"
	"reflect"
	"testing"
)

// testInfoV1 generates V1 content information for size pseudo-random bytes.
func testInfoV1(t testing.TB, size int) *Info {
	t.Helper()
	ci, err := GenerateV1(context.Background(), newTestContent(size, 1), SHA256, []byte("test secret"))
	if err != nil {
		t.Fatal(err)
	}
	return ci
}

// testContent is deterministic pseudo-random content of a given size.
type testContent struct {
	rng  *rand.ChaCha8
	left int
}

func newTestContent(size int, seed byte) *testContent {
	return &testContent{rng: rand.NewChaCha8([32]byte{seed}), left: size}
}

func (c *testContent) Read(p []byte) (int, error) {
	if c.left == 0 {
		return 0, io.EOF
	}
	p = p[:min(len(p), c.left)]
	c.rng.Read(p)
	c.left -= len(p)
	return len(p), nil
}

func contentBytes(size int, seed byte) []byte {
	b := make([]byte, size)
	rand.NewChaCha8([32]byte{seed}).Read(b)
	return b
}

// roundTrip marshals and parses ci and checks the result is equal.
func roundTrip(t testing.TB, ci *Info) *Info {
	t.Helper()
	raw, err := ci.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	got, err := Parse(raw)
	if err != nil {
		t.Fatalf("parse of marshalled info: %v", err)
	}
	if !equalInfo(ci, got) {
		t.Fatalf("round trip changed the info:\n got %+v\nwant %+v", got, ci)
	}
	return got
}

// equalInfo compares two infos, treating nil and empty slices alike.
func equalInfo(a, b *Info) bool {
	norm := func(ci *Info) Info {
		c := *ci
		if len(c.Segments) == 0 {
			c.Segments = nil
		}
		c.Segments = append([]Segment(nil), c.Segments...)
		for i := range c.Segments {
			if len(c.Segments[i].BlockHashes) == 0 {
				c.Segments[i].BlockHashes = nil
			}
		}
		return c
	}
	return reflect.DeepEqual(norm(a), norm(b))
}
