package hostedcache

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestSelfSignedCertificateIsKept(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	first, err := LoadOrCreateSelfSigned(dir, "outpost.branch.example", []net.IP{net.ParseIP("10.1.2.3")}, now)
	if err != nil {
		t.Fatal(err)
	}
	if !first.Generated || len(first.Thumbprint) != 40 || strings.ToUpper(first.Thumbprint) != first.Thumbprint {
		t.Fatalf("first start: %+v", first)
	}
	leaf, err := x509.ParseCertificate(first.TLS.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	if leaf.VerifyHostname("outpost.branch.example") != nil || leaf.VerifyHostname("10.1.2.3") != nil {
		t.Errorf("certificate names %v %v", leaf.DNSNames, leaf.IPAddresses)
	}
	if st, err := os.Stat(filepath.Join(dir, selfSignedKey)); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("key file: %v %v", st.Mode(), err)
	}
	again, err := LoadOrCreateSelfSigned(dir, "outpost.branch.example", nil, now.Add(time.Hour))
	if err != nil || again.Generated || again.Thumbprint != first.Thumbprint {
		t.Errorf("restart made a new certificate: %+v %v", again, err)
	}
	renamed, err := LoadOrCreateSelfSigned(dir, "other.example", nil, now)
	if err != nil || !renamed.Generated || renamed.Thumbprint == first.Thumbprint {
		t.Errorf("hostname change kept the old certificate: %v", err)
	}
	os.WriteFile(filepath.Join(dir, selfSignedCert), []byte("garbage"), 0o644)
	if c, err := LoadOrCreateSelfSigned(dir, "other.example", nil, now); err != nil || !c.Generated {
		t.Errorf("damaged certificate not replaced: %v", err)
	}
}

// An offer client pinned to the thumbprint talks to a server using the
// certificate, and refuses one with another.
func TestPinnedTLS(t *testing.T) {
	cert, err := LoadOrCreateSelfSigned(t.TempDir(), "localhost", []net.IP{net.IPv4(127, 0, 0, 1)}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	ts.TLS = &tls.Config{Certificates: []tls.Certificate{cert.TLS}}
	ts.StartTLS()
	defer ts.Close()
	for _, tc := range []struct {
		thumbprint string
		ok         bool
	}{
		{cert.Thumbprint, true},
		{strings.ToLower(cert.Thumbprint[:20]) + " " + cert.Thumbprint[20:], true},
		{"", true},
		{strings.Repeat("AB", 20), false},
	} {
		config, err := PinnedTLS(tc.thumbprint)
		if err != nil {
			t.Fatal(err)
		}
		client := &http.Client{Transport: &http.Transport{TLSClientConfig: config}}
		resp, err := client.Get(ts.URL)
		if (err == nil) != tc.ok {
			t.Errorf("thumbprint %q: %v", tc.thumbprint, err)
		}
		if err == nil {
			resp.Body.Close()
		}
	}
	if _, err := PinnedTLS("xyz"); err == nil {
		t.Error("a bad thumbprint was accepted")
	}
}
