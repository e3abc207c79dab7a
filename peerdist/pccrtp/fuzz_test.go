package pccrtp

import (
	"errors"
	"testing"
)

func FuzzParsePeerDist(f *testing.F) {
	for _, seed := range []string{
		"Version=1.0", "Version=1.1", "Version=1.1, ContentLength=123, MissingDataRequest=true",
		"version=1.23,contentlength=0", "Version=1.1, MissingDataRequest=false, X=y, Z", "ContentLength=5", "",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePeerDist(s)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if p.ContentLength < 0 {
			t.Fatalf("negative ContentLength from %q", s)
		}
		formatted := p.String()
		again, err := ParsePeerDist(formatted)
		if err != nil || again != p {
			t.Fatalf("%q → %+v → %q → %+v, %v", s, p, formatted, again, err)
		}
		if again.String() != formatted {
			t.Fatalf("format not stable: %q then %q", formatted, again.String())
		}
	})
}

func FuzzParsePeerDistEx(f *testing.F) {
	for _, seed := range []string{
		"MinContentInformation=1.0, MaxContentInformation=2.0", "MakeHashRequest=true",
		"MinContentInformation=2.0,MaxContentInformation=1.0,HashRequest=true", "maxcontentinformation=0.0", "",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePeerDistEx(s)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		formatted := p.String()
		again, err := ParsePeerDistEx(formatted)
		if err != nil || again != p {
			t.Fatalf("%q → %+v → %q → %+v, %v", s, p, formatted, again, err)
		}
		if again.String() != formatted {
			t.Fatalf("format not stable: %q then %q", formatted, again.String())
		}
	})
}
