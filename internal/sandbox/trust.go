package sandbox

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/paddock-dev/paddock/internal/store"
)

// Extra certificate authorities for a sandbox's guest (create --ca,
// --trust-host-ca, the user's config file). They are read and checked on
// the host at create, stored in the sandbox's config (one PEM certificate
// each) and given to the guest agent at every boot, which installs them
// (internal/guest/trust.go) beside the install's own authority.

// HostCADir is where a Debian-like host keeps the CAs it trusts beyond its
// distribution's (update-ca-certificates reads its *.crt files).
const HostCADir = "/usr/local/share/ca-certificates"

// distroCADir holds the CAs Debian's ca-certificates ships: the host CAs
// that --trust-host-ca leaves out, since the guest has them already.
const distroCADir = "/usr/share/ca-certificates"

// ReadCAFile reads a PEM file of one or more certificates and returns each
// certificate as PEM. A file with no certificate, a private key or text
// that is not PEM is refused, naming the file.
func ReadCAFile(file string) ([]string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("--ca %s: no such file", file)
		}
		return nil, fmt.Errorf("--ca %s: %w", file, err)
	}
	certs, err := parseCertificates(b)
	if err != nil {
		return nil, fmt.Errorf("--ca %s: %w", file, err)
	}
	return certs, nil
}

// parseCertificates splits PEM text into its certificates, each
// re-encoded as PEM, and refuses anything else in it.
func parseCertificates(b []byte) ([]string, error) {
	var certs []string
	rest := b
	for {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		if strings.Contains(blk.Type, "PRIVATE KEY") {
			return nil, fmt.Errorf("holds a %s: give the CA's certificate only, never a key", blk.Type)
		}
		if blk.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("holds a %s block: want PEM certificates (BEGIN CERTIFICATE)", blk.Type)
		}
		if _, err := x509.ParseCertificate(blk.Bytes); err != nil {
			return nil, fmt.Errorf("certificate %d: %w", len(certs)+1, err)
		}
		certs = append(certs, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: blk.Bytes})))
	}
	if len(certs) == 0 {
		return nil, errors.New("no PEM certificate in it (want -----BEGIN CERTIFICATE-----; convert DER with openssl x509 -inform der)")
	}
	if strings.Contains(string(rest), "-----BEGIN") {
		return nil, errors.New("a PEM block after the certificates is damaged")
	}
	return certs, nil
}

// HostCAFiles are the files --trust-host-ca reads: the *.crt files under
// HostCADir (recursively) and the file SSL_CERT_FILE names, if set.
func HostCAFiles() []string {
	var files []string
	filepath.WalkDir(HostCADir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".crt") {
			files = append(files, p)
		}
		return nil
	})
	if f := os.Getenv("SSL_CERT_FILE"); f != "" {
		files = append(files, f)
	}
	return files
}

// hostCAs reads the host's CAs beyond its distribution's bundle (see
// HostCAFiles). A file that holds no certificate is skipped; one of
// SSL_CERT_FILE that cannot be read is an error.
func hostCAs() ([]string, error) {
	distro := distroCAs()
	var cas []string
	var errs []error
	for _, f := range HostCAFiles() {
		certs, err := ReadCAFile(f)
		if err != nil {
			errs = append(errs, fmt.Errorf("--trust-host-ca: %s", strings.TrimPrefix(err.Error(), "--ca ")))
			continue
		}
		for _, c := range certs {
			if !distro[fingerprint(c)] {
				cas = append(cas, c)
			}
		}
	}
	return cas, errors.Join(errs...)
}

// distroCAs are the fingerprints of the certificates under distroCADir.
func distroCAs() map[string]bool {
	set := map[string]bool{}
	filepath.WalkDir(distroCADir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".crt") {
			return nil
		}
		b, _ := os.ReadFile(p)
		certs, _ := parseCertificates(b)
		for _, c := range certs {
			set[fingerprint(c)] = true
		}
		return nil
	})
	return set
}

// fingerprint is the SHA-256 of a PEM certificate's DER, hex.
func fingerprint(certPEM string) string {
	b, _ := pem.Decode([]byte(certPEM))
	if b == nil {
		return ""
	}
	sum := sha256.Sum256(b.Bytes)
	return hex.EncodeToString(sum[:])
}

// validateCAs gathers the sandbox's extra CAs into cfg.CACerts: a fork's
// checkpoint's first, then those of m.Trust's and o's CA files, then the
// host's when either asks; each certificate once.
func (m *Manager) validateCAs(o CreateOptions, cfg *store.SandboxConfig) error {
	var errs []error
	add := func(certs []string) {
		for _, c := range certs {
			fp := fingerprint(c)
			if !slices.ContainsFunc(cfg.CACerts, func(h string) bool { return fingerprint(h) == fp }) {
				cfg.CACerts = append(cfg.CACerts, c)
			}
		}
	}
	if o.From != "" {
		var meta store.CheckpointMeta
		if store.ReadJSON(m.Home.Checkpoint(o.From).Meta(), &meta) == nil {
			add(meta.Config.CACerts) // a fork's guest has them already
		}
	}
	for _, f := range append(slices.Clip(m.Trust.CAFiles), o.CAFiles...) {
		certs, err := ReadCAFile(f)
		errs = append(errs, err)
		add(certs)
	}
	if o.TrustHostCA || m.Trust.TrustHostCA {
		certs, err := hostCAs()
		errs = append(errs, err)
		add(certs)
	}
	return errors.Join(errs...)
}

// TrustDiffers says how sandbox name's extra CAs differ from those m
// gives a create that asks for none of its own (m.Trust), or "" when they
// are the same certificates: whether a warm-pool clone made by an earlier
// serve trusts what this one's would.
func (m *Manager) TrustDiffers(name string) string {
	var have, want store.SandboxConfig
	if err := store.ReadJSON(m.Home.Sandbox(name).Config(), &have); err != nil {
		return err.Error()
	}
	if err := m.validateCAs(CreateOptions{}, &want); err != nil {
		return err.Error()
	}
	fps := func(pems []string) []string {
		var out []string
		for _, p := range pems {
			out = append(out, fingerprint(p))
		}
		slices.Sort(out)
		return out
	}
	if h, w := fps(have.CACerts), fps(want.CACerts); !slices.Equal(h, w) {
		return fmt.Sprintf("made trusting other CAs than this server gives its sandboxes (%d extra, want %d)", len(h), len(w))
	}
	return ""
}

// CAInfo describes one CA for inspect: never its PEM.
type CAInfo struct {
	Subject string `json:"subject"`
	SHA256  string `json:"sha256"`
}

// DescribeCAs describes PEM certificates (a sandbox config's CACerts).
func DescribeCAs(pems []string) []CAInfo {
	var out []CAInfo
	for _, p := range pems {
		info := CAInfo{SHA256: fingerprint(p)}
		if b, _ := pem.Decode([]byte(p)); b != nil {
			if c, err := x509.ParseCertificate(b.Bytes); err == nil {
				info.Subject = c.Subject.String()
			}
		}
		out = append(out, info)
	}
	return out
}

// SandboxCAs describes the extra CAs of sandbox name.
func (m *Manager) SandboxCAs(name string) []CAInfo {
	var cfg store.SandboxConfig
	if store.ReadJSON(m.Home.Sandbox(name).Config(), &cfg) != nil {
		return nil
	}
	return DescribeCAs(cfg.CACerts)
}

// UserConfig is the per-user defaults file (UserConfigPath), YAML:
//
//	# CA files every sandbox this user creates trusts (create --ca)
//	ca: [~/corp-root.pem]
//	# trust the CAs the host trusts beyond its distribution's (--trust-host-ca)
//	trust_host_ca: true
//
// A relative path is relative to the file's folder; ~/ is the home folder.
type UserConfig struct {
	CA          []string `yaml:"ca"`
	TrustHostCA bool     `yaml:"trust_host_ca"`
}

// UserConfigPath is $XDG_CONFIG_HOME/paddock/config.yaml, or
// ~/.config/paddock/config.yaml.
func UserConfigPath() (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "paddock", "config.yaml"), nil
}

// LoadUserConfig reads the user's config file; none is an empty config.
func LoadUserConfig() (UserConfig, error) {
	var c UserConfig
	path, err := UserConfigPath()
	if err != nil {
		return c, nil // no home: no file
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return c, fmt.Errorf("config %s: %w", path, err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return c, fmt.Errorf("config %s: %w", path, err)
	}
	home, _ := os.UserHomeDir()
	for i, f := range c.CA {
		switch {
		case strings.HasPrefix(f, "~/") && home != "":
			c.CA[i] = filepath.Join(home, f[2:])
		case !filepath.IsAbs(f):
			c.CA[i] = filepath.Join(filepath.Dir(path), f)
		}
	}
	return c, nil
}

// DefaultTrust is the trust of the user's config file with flags' added:
// caFiles after the file's, trustHostCA over the file's trust_host_ca
// when the flag was given (trustHostCAFlag). Every file is read now, so
// a server that applies it to each create refuses to start on a bad one.
func DefaultTrust(caFiles []string, trustHostCA, trustHostCAFlag bool) (Trust, error) {
	c, err := LoadUserConfig()
	if err != nil {
		return Trust{}, err
	}
	o := CreateOptions{CAFiles: caFiles, TrustHostCA: trustHostCA}
	c.apply(&o, trustHostCAFlag)
	var errs []error
	path, _ := UserConfigPath()
	for _, f := range c.CA {
		if _, err := ReadCAFile(f); err != nil {
			errs = append(errs, fmt.Errorf("config %s: ca %s", path, strings.TrimPrefix(err.Error(), "--ca ")))
		}
	}
	for _, f := range caFiles {
		_, err := ReadCAFile(f)
		errs = append(errs, err)
	}
	if o.TrustHostCA {
		_, err := hostCAs()
		errs = append(errs, err)
	}
	return Trust{CAFiles: o.CAFiles, TrustHostCA: o.TrustHostCA}, errors.Join(errs...)
}

// ApplyUserTrust adds the user's config file to a create's trust options,
// as the command line does: the file's CAs first, then the flags'; its
// trust_host_ca unless the flag was given (trustHostCAFlag).
func ApplyUserTrust(o *CreateOptions, trustHostCAFlag bool) error {
	c, err := LoadUserConfig()
	if err != nil {
		return err
	}
	c.apply(o, trustHostCAFlag)
	return nil
}

// apply adds c to a create's trust options: see ApplyUserTrust.
func (c UserConfig) apply(o *CreateOptions, trustHostCAFlag bool) {
	o.CAFiles = append(slices.Clip(c.CA), o.CAFiles...)
	if !trustHostCAFlag {
		o.TrustHostCA = o.TrustHostCA || c.TrustHostCA
	}
}
