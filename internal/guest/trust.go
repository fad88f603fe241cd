package guest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
)

// Trust in the guest: the certificate authorities Configure gives (the
// install's own, whose certificates the host's forwarder shows for the
// hosts it intercepts, and those of create --ca and --trust-host-ca) are
// put where the guest's TLS clients look, so a CA needs no setup in the
// guest:
//
//   - appended, once, to every system bundle the root filesystem has
//     (Debian's /etc/ssl/certs/ca-certificates.crt, Fedora's, Alpine's,
//     ...; symbolic links followed, each file once). OpenSSL, GnuTLS, curl,
//     git, Python's ssl and Go read these. A root filesystem without one (an
//     imported OCI image) gets Debian's, holding only these CAs. A CA
//     already in a bundle (a restored or forked guest) is not added again;
//   - one file per certificate in /usr/local/share/ca-certificates (and
//     Fedora's anchors folder when it exists), named paddock-<sha256>.crt,
//     so a user's update-ca-certificates keeps them in the bundle it makes
//     (written just after Configure answers; see CopyCAs);
//   - all of them, and nothing else, in caFile on /run's tmpfs, which
//     NODE_EXTRA_CA_CERTS names (Node adds that file to its own roots).
//
// Every exec's environment then carries trustEnv: SSL_CERT_FILE and
// REQUESTS_CA_BUNDLE name the full bundle (a variable that replaces a
// client's roots must name roots and CAs both: Python's requests and pip
// use certifi's bundle otherwise; Pythons, Rust and static binaries with
// an OpenSSL of their own read SSL_CERT_FILE; AWS_CA_BUNDLE, botocore's,
// which uses certifi's otherwise), NODE_EXTRA_CA_CERTS and DENO_CERT the
// CAs alone (Node, Bun and Deno add them to their own roots). An exec's own environment overrides them. update-ca-
// certificates is never run (it takes seconds under TCG) and no hashed
// links are made: the clients above read bundles.

// bundlePaths are the system CA bundles, as Go's crypto/x509 lists them
// for Linux; the first that exists is the one the variables name.
var bundlePaths = []string{
	"/etc/ssl/certs/ca-certificates.crt",                // Debian, Ubuntu, Gentoo, Alpine
	"/etc/pki/tls/certs/ca-bundle.crt",                  // Fedora, RHEL 6
	"/etc/ssl/ca-bundle.pem",                            // openSUSE
	"/etc/pki/tls/cacert.pem",                           // OpenELEC
	"/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem", // CentOS, RHEL 7
	"/etc/ssl/cert.pem",                                 // Alpine, macOS-like layouts
}

const (
	// localCADir is where update-ca-certificates (Debian, Alpine) finds
	// local CAs; anchorsDir is update-ca-trust's (Fedora, RHEL).
	localCADir = "/usr/local/share/ca-certificates"
	anchorsDir = "/etc/pki/ca-trust/source/anchors"
	// caFile holds the given CAs alone (NODE_EXTRA_CA_CERTS).
	caFile = "/run/paddock/ca-certificates.crt"
)

// trustCert is one certificate of a CA Configure gave, PEM-encoded the
// way this package writes it.
type trustCert struct {
	pem  []byte
	name string // sha256 of the DER, hex, for file names
}

// parseCAs splits PEM texts into their certificates, in order, without
// duplicates. A text that is not only CERTIFICATE blocks is an error. The
// host parsed each certificate (internal/sandbox/trust.go); the guest does
// not again: after a restore, crypto/x509's parser is code new to TCG's
// translator on the path of every create.
func parseCAs(pems []string) ([]trustCert, error) {
	var certs []trustCert
	var errs []error
	for i, p := range pems {
		rest, n, nerrs := []byte(p), 0, len(errs)
		for {
			var b *pem.Block
			b, rest = pem.Decode(rest)
			if b == nil {
				break
			}
			if b.Type != "CERTIFICATE" {
				errs = append(errs, fmt.Errorf("ca %d: a %s block: want certificates only", i+1, b.Type))
				continue
			}
			n++
			sum := sha256.Sum256(b.Bytes)
			c := trustCert{pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: b.Bytes}), name: hex.EncodeToString(sum[:])}
			if !slices.ContainsFunc(certs, func(o trustCert) bool { return o.name == c.name }) {
				certs = append(certs, c)
			}
		}
		if n == 0 && len(errs) == nerrs {
			errs = append(errs, fmt.Errorf("ca %d: no PEM certificate", i+1))
		}
	}
	return certs, errors.Join(errs...)
}

// trustInstall is what InstallCAs did.
type trustInstall struct {
	Bundle string   // guest path of the bundle the variables name
	Added  []string // bundles (guest paths) that gained a certificate
}

// InstallCAs puts certs into the trust stores under root (see the top of
// this file). It is idempotent.
func InstallCAs(root string, certs []trustCert) (trustInstall, error) {
	var res trustInstall
	if len(certs) == 0 {
		return res, nil
	}
	var errs []error
	seen := map[string]bool{}
	for _, p := range bundlePaths {
		real, ok := resolveIn(root, p)
		if !ok || seen[real] {
			continue
		}
		seen[real] = true
		if res.Bundle == "" {
			res.Bundle = p
		}
		added, err := appendMissing(real, certs)
		if err != nil {
			errs = append(errs, err)
		} else if added {
			res.Added = append(res.Added, p)
		}
	}
	if res.Bundle == "" {
		res.Bundle = bundlePaths[0]
		dst := filepath.Join(root, res.Bundle)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return res, fmt.Errorf("make %s: %w", res.Bundle, err)
		}
		if _, err := appendMissing(dst, certs); err != nil {
			return res, err
		}
		res.Added = append(res.Added, res.Bundle)
	}
	var all []byte
	for _, c := range certs {
		all = append(all, c.pem...)
	}
	dst := filepath.Join(root, caFile)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		errs = append(errs, err)
	} else if err := writeIfChanged(dst, all); err != nil {
		errs = append(errs, err)
	}
	return res, errors.Join(errs...)
}

// CopyCAs writes each certificate to the folders update-ca-certificates
// and update-ca-trust read, so a bundle they make keeps them. Configure
// runs it after it answers: no TLS client reads these files, and new files
// on the root filesystem cost a restored guest their ext4 code paths.
func CopyCAs(root string, certs []trustCert) error {
	errs := []error{writeLocalCAs(filepath.Join(root, localCADir), certs, true)}
	if fi, err := os.Stat(filepath.Join(root, anchorsDir)); err == nil && fi.IsDir() {
		errs = append(errs, writeLocalCAs(filepath.Join(root, anchorsDir), certs, false))
	}
	return errors.Join(errs...)
}

// resolveIn follows the symbolic links of the file p names under root
// (absolute targets are root's) and reports the host path of the regular
// file it ends at.
func resolveIn(root, p string) (string, bool) {
	cur := filepath.Join(root, p)
	for range 8 {
		fi, err := os.Lstat(cur)
		if err != nil {
			return "", false
		}
		if fi.Mode()&os.ModeSymlink == 0 {
			return cur, fi.Mode().IsRegular()
		}
		target, err := os.Readlink(cur)
		if err != nil {
			return "", false
		}
		if filepath.IsAbs(target) {
			cur = filepath.Join(root, target)
		} else {
			cur = filepath.Join(filepath.Dir(cur), target)
		}
	}
	return "", false
}

// appendMissing appends to the bundle file the certificates it does not
// hold, in one write, and reports whether it wrote.
func appendMissing(file string, certs []trustCert) (bool, error) {
	have, err := os.ReadFile(file)
	if err != nil && !os.IsNotExist(err) {
		return false, fmt.Errorf("read %s: %w", file, err)
	}
	var add []byte
	for _, c := range certs {
		if !bytes.Contains(have, c.pem) && !bytes.Contains(add, c.pem) {
			add = append(add, c.pem...)
		}
	}
	if len(add) == 0 {
		return false, nil
	}
	if len(have) > 0 && have[len(have)-1] != '\n' {
		add = append([]byte{'\n'}, add...)
	}
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return false, fmt.Errorf("add CAs to %s: %w", file, err)
	}
	_, err = f.Write(add)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return false, fmt.Errorf("add CAs to %s: %w", file, err)
	}
	return true, nil
}

// writeLocalCAs writes each certificate to dir/paddock-<sha256>.crt
// unless it is there (mkdir: make dir when missing).
func writeLocalCAs(dir string, certs []trustCert, mkdir bool) error {
	if mkdir {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	var errs []error
	for _, c := range certs {
		errs = append(errs, writeIfChanged(filepath.Join(dir, "paddock-"+c.name[:16]+".crt"), c.pem))
	}
	return errors.Join(errs...)
}

// writeIfChanged writes data to file (0644) unless file holds it already.
func writeIfChanged(file string, data []byte) error {
	if b, err := os.ReadFile(file); err == nil && bytes.Equal(b, data) {
		return nil
	}
	tmp := file + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", file, err)
	}
	if err := os.Rename(tmp, file); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", file, err)
	}
	return nil
}

// trustVars is the environment that points TLS clients at the CAs, given
// the bundle InstallCAs named; nil when there is none.
func trustVars(bundle string) []string {
	if bundle == "" {
		return nil
	}
	return []string{
		"SSL_CERT_FILE=" + bundle,
		"REQUESTS_CA_BUNDLE=" + bundle,
		"NODE_EXTRA_CA_CERTS=" + caFile,
		"DENO_CERT=" + caFile,
		"AWS_CA_BUNDLE=" + bundle,
	}
}

// installTrust is Configure's trust step: it installs the request's CAs,
// records the variables every exec gets, and has dockerd read them again
// when it may have read the bundles before they had these CAs.
func (a *Agent) installTrust(pems []string) error {
	certs, err := parseCAs(pems)
	if err != nil {
		return err
	}
	res, err := InstallCAs(a.Root, certs)
	if err != nil {
		return err
	}
	names := make([]string, len(certs))
	for i, c := range certs {
		names[i] = c.name
	}
	a.mu.Lock()
	before := a.trusted
	a.trusted = names
	a.trustEnv = trustVars(res.Bundle)
	a.mu.Unlock()
	a.copies.Add(1)
	go func() {
		defer a.copies.Done()
		if err := CopyCAs(a.Root, certs); err != nil {
			a.Log.Warn("copy the CAs for update-ca-certificates", "err", err)
		}
	}()
	// dockerd reads the bundle once, at its first registry connection. In
	// a clone of the template and after a cold boot it has made none
	// before this Configure (no user command ran); a guest that ran with
	// fewer CAs (a fork given more) may have one, so dockerd starts again.
	if len(res.Added) > 0 && before != nil && !subset(names, before) {
		a.Docker.restartIdle(a.Log, "the trusted CAs changed")
	}
	return nil
}

func subset(a, b []string) bool {
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	return true
}

// execTrustEnv is the trust environment Configure recorded.
func (a *Agent) execTrustEnv() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.trustEnv
}
