package hostedcache

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Certificate is the hosted cache's TLS identity for the PCHC v1.0 HTTPS
// port, with the SHA-1 thumbprint Windows admins type into `netsh` or
// compare in the certificate store.
type Certificate struct {
	TLS        tls.Certificate
	Thumbprint string // 40 upper-case hex digits
	Generated  bool   // made on this start (self-signed)
}

// Thumbprint returns the SHA-1 thumbprint of a DER certificate, as Windows
// shows it.
func Thumbprint(der []byte) string {
	sum := sha1.Sum(der)
	return strings.ToUpper(hex.EncodeToString(sum[:]))
}

// LoadCertificate loads a configured certificate and key (PEM files).
func LoadCertificate(certFile, keyFile string) (*Certificate, error) {
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("hostedcache: TLS certificate %s / key %s: %w", certFile, keyFile, err)
	}
	return &Certificate{TLS: pair, Thumbprint: Thumbprint(pair.Certificate[0])}, nil
}

// Self-signed certificate file names inside the state directory.
const (
	selfSignedCert = "hosted-cache-cert.pem"
	selfSignedKey  = "hosted-cache-key.pem"
)

// LoadOrCreateSelfSigned returns the self-signed certificate kept in dir,
// creating it on first start for hostname and the given addresses. It is
// kept across restarts because Windows clients are told which certificate
// to trust: a new one on every boot would break them. A kept certificate
// that no longer names hostname is replaced.
func LoadOrCreateSelfSigned(dir, hostname string, addrs []net.IP, now time.Time) (*Certificate, error) {
	certPath, keyPath := filepath.Join(dir, selfSignedCert), filepath.Join(dir, selfSignedKey)
	// A missing, damaged or outdated pair is replaced rather than leaving
	// HTTPS down.
	if c, err := LoadCertificate(certPath, keyPath); err == nil {
		leaf, err := x509.ParseCertificate(c.TLS.Certificate[0])
		if err == nil && leaf.VerifyHostname(hostname) == nil && now.Before(leaf.NotAfter) {
			return c, nil
		}
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048) // RSA: every Windows 7 schannel takes it
	if err != nil {
		return nil, fmt.Errorf("hostedcache: generating a TLS key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	template := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: hostname, Organization: []string{"Outpost BranchCache hosted cache"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true, // so admins can import it as a trusted root
		DNSNames:              []string{hostname},
		IPAddresses:           addrs,
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("hostedcache: creating the TLS certificate: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := writeFileAtomic(keyPath, keyPEM, 0o600); err != nil {
		return nil, err
	}
	if err := writeFileAtomic(certPath, certPEM, 0o644); err != nil {
		return nil, err
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	return &Certificate{TLS: pair, Thumbprint: Thumbprint(der), Generated: true}, nil
}

func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), mode)
	}
	if err != nil {
		return fmt.Errorf("hostedcache: writing %s: %w", path, err)
	}
	return os.Rename(tmp.Name(), path)
}
