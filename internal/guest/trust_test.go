package guest

import (
	"bytes"
	"context"
	"crypto/x509"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	agentv1 "github.com/paddock-dev/paddock/api/agent/v1"
	"github.com/paddock-dev/paddock/internal/testpki"
)

func TestParseCAs(t *testing.T) {
	ca := testpki.NewCA(t, "a")
	a, keyPEM := ca.PEM, ca.KeyPEM()
	b := testpki.NewCA(t, "b").PEM
	tests := []struct {
		name  string
		pems  []string
		certs int
		err   string
	}{
		{"one", []string{a}, 1, ""},
		{"two in one text, with comments and CRLF", []string{"# corp\r\n" + strings.ReplaceAll(a, "\n", "\r\n") + "\n" + b}, 2, ""},
		{"duplicates once", []string{a, a, b}, 2, ""},
		{"none", nil, 0, ""},
		{"empty text", []string{""}, 0, "ca 1: no PEM certificate"},
		{"garbage", []string{"hello"}, 0, "ca 1: no PEM certificate"},
		{"a key", []string{a, keyPEM}, 1, "ca 2: a EC PRIVATE KEY block"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			certs, err := parseCAs(tt.pems)
			if len(certs) != tt.certs {
				t.Errorf("%d certificates, want %d", len(certs), tt.certs)
			}
			if tt.err == "" && err != nil || tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)) {
				t.Errorf("error %v, want %q", err, tt.err)
			}
		})
	}
}

func TestInstallCAsAppendsOnce(t *testing.T) {
	root := t.TempDir()
	system := testpki.NewCA(t, "a system root").PEM
	bundle := filepath.Join(root, "etc/ssl/certs/ca-certificates.crt")
	os.MkdirAll(filepath.Dir(bundle), 0o755)
	os.WriteFile(bundle, []byte(strings.TrimSuffix(system, "\n")), 0o644) // no final newline
	// Alpine's second name for the same bundle: one file, added to once.
	os.Symlink("certs/ca-certificates.crt", filepath.Join(root, "etc/ssl/cert.pem"))
	// Fedora's bundle, through an absolute link.
	fedora := filepath.Join(root, "etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem")
	os.MkdirAll(filepath.Dir(fedora), 0o755)
	os.WriteFile(fedora, []byte(system), 0o644)
	os.MkdirAll(filepath.Join(root, "etc/pki/tls/certs"), 0o755)
	os.Symlink("/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem", filepath.Join(root, "etc/pki/tls/certs/ca-bundle.crt"))

	a := testpki.NewCA(t, "corp").PEM
	b := testpki.NewCA(t, "paddock").PEM
	certs, err := parseCAs([]string{a, b})
	if err != nil {
		t.Fatal(err)
	}
	for round := range 3 {
		res, err := InstallCAs(root, certs)
		if err != nil {
			t.Fatal(err)
		}
		if err := CopyCAs(root, certs); err != nil {
			t.Fatal(err)
		}
		if res.Bundle != "/etc/ssl/certs/ca-certificates.crt" {
			t.Errorf("bundle %q", res.Bundle)
		}
		want := []string{"/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt"}
		if round > 0 {
			want = nil
		}
		if !slices.Equal(res.Added, want) {
			t.Errorf("round %d: added to %v, want %v", round, res.Added, want)
		}
	}
	for _, f := range []string{bundle, fedora} {
		got, _ := os.ReadFile(f)
		if !strings.HasPrefix(string(got), system) {
			t.Errorf("%s lost its own roots or their line end:\n%s", f, got)
		}
		for _, ca := range []string{a, b} {
			if n := strings.Count(string(got), ca); n != 1 {
				t.Errorf("%s holds a CA %d times", f, n)
			}
		}
		if p := x509.NewCertPool(); !p.AppendCertsFromPEM(got) || !bytes.HasSuffix(got, []byte(b)) {
			t.Errorf("%s is not a bundle ending in the CAs", f)
		}
	}
	if fi, err := os.Lstat(filepath.Join(root, "etc/ssl/cert.pem")); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the link was replaced: %v", err)
	}
	local, _ := filepath.Glob(filepath.Join(root, localCADir, "paddock-*.crt"))
	if len(local) != 2 {
		t.Errorf("local copies %v, want 2", local)
	}
	if got, _ := os.ReadFile(filepath.Join(root, caFile)); string(got) != a+b {
		t.Errorf("%s: %q, want the two CAs", caFile, got)
	}
}

func TestInstallCAsMakesABundle(t *testing.T) {
	root := t.TempDir() // an imported image without ca-certificates
	a := testpki.NewCA(t, "corp").PEM
	certs, _ := parseCAs([]string{a})
	res, err := InstallCAs(root, certs)
	if err != nil {
		t.Fatal(err)
	}
	if res.Bundle != "/etc/ssl/certs/ca-certificates.crt" {
		t.Errorf("bundle %q", res.Bundle)
	}
	if got, _ := os.ReadFile(filepath.Join(root, res.Bundle)); string(got) != a {
		t.Errorf("the new bundle holds %q", got)
	}
	if res, _ := InstallCAs(root, certs); len(res.Added) != 0 {
		t.Errorf("second install added to %v", res.Added)
	}
}

func TestConfigureTrustSetsExecEnv(t *testing.T) {
	root := t.TempDir()
	a := &Agent{Root: root, System: NoopSystem{}, Log: slog.New(slog.DiscardHandler)}
	if _, err := a.Configure(context.Background(), &agentv1.ConfigureRequest{CaCerts: []string{"junk"}}); err == nil {
		t.Fatal("Configure took a CA that is not PEM")
	}
	if env := a.execTrustEnv(); env != nil {
		t.Fatalf("env after a refused Configure: %v", env)
	}
	ca := testpki.NewCA(t, "corp").PEM
	if _, err := a.Configure(context.Background(), &agentv1.ConfigureRequest{CaCerts: []string{ca}}); err != nil {
		t.Fatal(err)
	}
	a.copies.Wait()
	if local, _ := filepath.Glob(filepath.Join(root, localCADir, "paddock-*.crt")); len(local) != 1 {
		t.Errorf("local copies %v", local)
	}
	env := BuildEnv(Identity{Name: "agent", Home: "/home/agent"}, false, append(a.execTrustEnv(), "REQUESTS_CA_BUNDLE=/mine.pem"))
	for _, want := range []string{"SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt", "REQUESTS_CA_BUNDLE=/mine.pem", "NODE_EXTRA_CA_CERTS=" + caFile, "DENO_CERT=" + caFile, "AWS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt"} {
		if !slices.Contains(env, want) {
			t.Errorf("env %v lacks %s", env, want)
		}
	}
}
