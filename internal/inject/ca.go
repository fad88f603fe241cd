package inject

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"sync"
	"time"

	"github.com/paddock-dev/paddock/internal/store"
)

// caLifetime is how long the install's authority is valid; leafLifetime
// how long a certificate it signs for one host is.
const (
	caLifetime   = 10 * 365 * 24 * time.Hour
	leafLifetime = 7 * 24 * time.Hour
)

// CA is this install's certificate authority: generated once per
// PADDOCK_HOME (private key 0600 in its secrets folder, never in a VM), it
// signs the certificates the forwarder shows a guest for the hosts it
// intercepts. Guests trust its certificate.
//
// Invariants: mu guards leaves, which holds one certificate per host,
// replaced when it is within a day of expiring.
type CA struct {
	cert    *x509.Certificate
	certPEM []byte
	key     *ecdsa.PrivateKey

	mu     sync.Mutex
	leaves map[string]*tls.Certificate
}

// LoadCA returns home's authority, making it first if there is none.
// Making it takes the secret store's lock, so processes starting at once
// end with one authority.
func LoadCA(home store.Home) (*CA, error) {
	ca, err := readCA(home)
	if !errors.Is(err, fs.ErrNotExist) {
		return ca, err
	}
	if err := os.MkdirAll(home.SecretsDir(), 0o700); err != nil {
		return nil, err
	}
	lock, err := store.LockFile(home.SecretsLock(), true)
	if err != nil {
		return nil, err
	}
	defer lock.Unlock()
	if ca, err := readCA(home); !errors.Is(err, fs.ErrNotExist) {
		return ca, err
	}
	if err := makeCA(home); err != nil {
		return nil, fmt.Errorf("make the certificate authority: %w", err)
	}
	return readCA(home)
}

// CertPEM returns the authority's certificate, PEM-encoded.
func (c *CA) CertPEM() []byte { return c.certPEM }

func readCA(home store.Home) (*CA, error) {
	keyPEM, err := os.ReadFile(home.CAKey())
	if err != nil {
		return nil, err
	}
	certPEM, err := os.ReadFile(home.CACert())
	if err != nil {
		return nil, err
	}
	kb, _ := pem.Decode(keyPEM)
	cb, _ := pem.Decode(certPEM)
	if kb == nil || cb == nil {
		return nil, fmt.Errorf("the certificate authority in %s is damaged (not PEM); remove %s and %s to make a new one", home.SecretsDir(), home.CAKey(), home.CACert())
	}
	key, err := x509.ParseECPrivateKey(kb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", home.CAKey(), err)
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", home.CACert(), err)
	}
	return &CA{cert: cert, certPEM: certPEM, key: key, leaves: map[string]*tls.Certificate{}}, nil
}

func makeCA(home store.Home) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	host, _ := os.Hostname()
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "paddock sandbox CA (" + host + ")", Organization: []string{"paddock"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(caLifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	// The key last: readCA finds the authority only when both are there.
	if err := store.WriteFileAtomic(home.CACert(), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		return err
	}
	return store.WriteFileAtomic(home.CAKey(), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	return n
}

// Leaf returns a certificate for host signed by c, made on first use and
// kept until a day before it expires.
func (c *CA) Leaf(host string) (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if l, ok := c.leaves[host]; ok && time.Until(l.Leaf.NotAfter) > 24*time.Hour {
		return l, nil
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: host},
		DNSNames:     []string{host},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(leafLifetime),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.cert, &key.PublicKey, c.key)
	if err != nil {
		return nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	l := &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
	c.leaves[host] = l
	return l, nil
}
