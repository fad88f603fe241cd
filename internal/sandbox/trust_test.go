package sandbox

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/paddock-dev/paddock/internal/store"
	"github.com/paddock-dev/paddock/internal/testpki"
)

func TestReadCAFile(t *testing.T) {
	root := testpki.NewCA(t, "corp root")
	a, key := root.PEM, root.KeyPEM()
	b := testpki.NewCA(t, "corp issuing").PEM
	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(s), 0o644)
		return p
	}
	tests := []struct {
		name, content string
		certs         int
		err           string
	}{
		{"one.pem", a, 1, ""},
		{"chain.pem", "subject=corp root\n" + a + "\n" + b, 2, ""},
		{"crlf.pem", strings.ReplaceAll(a, "\n", "\r\n"), 1, ""},
		{"empty.pem", "", 0, "empty.pem: no PEM certificate"},
		{"garbage.pem", "hello\n", 0, "garbage.pem: no PEM certificate"},
		{"der.crt", "\x30\x82\x01\x0a", 0, "der.crt: no PEM certificate"},
		{"key.pem", a + key, 0, "key.pem: holds a EC PRIVATE KEY"},
		{"csr.pem", "-----BEGIN CERTIFICATE REQUEST-----\naGk=\n-----END CERTIFICATE REQUEST-----\n", 0, "csr.pem: holds a CERTIFICATE REQUEST block"},
		{"bad.pem", "-----BEGIN CERTIFICATE-----\naGk=\n-----END CERTIFICATE-----\n", 0, "bad.pem: certificate 1:"},
		{"cut.pem", a + b[:len(b)/2], 0, "damaged"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			certs, err := ReadCAFile(write(tt.name, tt.content))
			if len(certs) != tt.certs {
				t.Errorf("%d certificates, want %d", len(certs), tt.certs)
			}
			if tt.err == "" && err != nil || tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)) {
				t.Errorf("error %v, want %q", err, tt.err)
			}
		})
	}
	if _, err := ReadCAFile(filepath.Join(dir, "nope.pem")); err == nil || !strings.Contains(err.Error(), "nope.pem: no such file") {
		t.Errorf("missing file: %v", err)
	}
	if d := DescribeCAs([]string{a}); len(d) != 1 || d[0].Subject != "CN=corp root" || d[0].SHA256 != fingerprint(a) || len(d[0].SHA256) != 64 {
		t.Errorf("describe: %+v", d)
	}
}

func TestUserConfigTrust(t *testing.T) {
	cfgHome := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", cfgHome)
	t.Setenv("HOME", "/home/someone")
	o := CreateOptions{CAFiles: []string{"/flag.pem"}}
	if err := ApplyUserTrust(&o, false); err != nil || !slices.Equal(o.CAFiles, []string{"/flag.pem"}) || o.TrustHostCA {
		t.Fatalf("without a file: %+v %v", o, err)
	}
	os.MkdirAll(filepath.Join(cfgHome, "paddock"), 0o755)
	file := filepath.Join(cfgHome, "paddock", "config.yaml")
	os.WriteFile(file, []byte("ca: [~/corp.pem, rel.pem, /abs.pem]\ntrust_host_ca: true\n"), 0o644)
	o = CreateOptions{CAFiles: []string{"/flag.pem"}}
	if err := ApplyUserTrust(&o, false); err != nil {
		t.Fatal(err)
	}
	want := []string{"/home/someone/corp.pem", filepath.Join(cfgHome, "paddock", "rel.pem"), "/abs.pem", "/flag.pem"}
	if !slices.Equal(o.CAFiles, want) || !o.TrustHostCA {
		t.Errorf("with the file: %+v, want %v and trust_host_ca", o, want)
	}
	o = CreateOptions{}
	if ApplyUserTrust(&o, true); o.TrustHostCA {
		t.Error("--trust-host-ca=false did not override the file")
	}
	os.WriteFile(file, []byte("cas: [x]\n"), 0o644)
	if err := ApplyUserTrust(&CreateOptions{}, false); err == nil || !strings.Contains(err.Error(), file) {
		t.Errorf("an unknown key: %v", err)
	}
}

// A server's default trust (serve, mcp): the config file's CAs and the
// flags', each file read at once; every create of its Manager gets them
// before its own, each certificate once.
func TestDefaultTrust(t *testing.T) {
	cfgHome := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", cfgHome)
	dir := t.TempDir()
	corp, flag, own := testpki.NewCA(t, "corp").PEM, testpki.NewCA(t, "flag").PEM, testpki.NewCA(t, "own").PEM
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	corpFile, flagFile, ownFile := write("corp.pem", corp), write("flag.pem", flag), write("own.pem", own)
	os.MkdirAll(filepath.Join(cfgHome, "paddock"), 0o755)
	os.WriteFile(filepath.Join(cfgHome, "paddock", "config.yaml"), []byte("ca: ["+corpFile+"]\n"), 0o644)

	tr, err := DefaultTrust([]string{flagFile}, false, false)
	if err != nil || !slices.Equal(tr.CAFiles, []string{corpFile, flagFile}) || tr.TrustHostCA {
		t.Fatalf("DefaultTrust: %+v %v", tr, err)
	}
	m := &Manager{Home: store.Home(t.TempDir()), Trust: tr}
	var cfg store.SandboxConfig
	if err := m.validateCAs(CreateOptions{CAFiles: []string{ownFile, flagFile}}, &cfg); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cfg.CACerts, []string{corp, flag, own}) {
		t.Errorf("a create's CAs: %d certificates, want corp, flag, own once each", len(cfg.CACerts))
	}
	if _, err := DefaultTrust([]string{write("key.pem", testpki.NewCA(t, "k").KeyPEM())}, false, false); err == nil || !strings.Contains(err.Error(), "key.pem") {
		t.Errorf("a key file as --ca: %v", err)
	}
	if _, err := DefaultTrust([]string{filepath.Join(dir, "nope.pem")}, false, false); err == nil || !strings.Contains(err.Error(), "--ca "+filepath.Join(dir, "nope.pem")) {
		t.Errorf("a missing --ca: %v", err)
	}
	os.WriteFile(filepath.Join(cfgHome, "paddock", "config.yaml"), []byte("ca: [gone.pem]\n"), 0o644)
	if _, err := DefaultTrust(nil, false, false); err == nil || !strings.Contains(err.Error(), "config "+filepath.Join(cfgHome, "paddock", "config.yaml")+": ca "+filepath.Join(cfgHome, "paddock", "gone.pem")+": no such file") {
		t.Errorf("a missing file in the config: %v", err)
	}
}

// A clone made with the same CAs (in any order) fits this Manager's
// Trust; one with fewer, more or other CAs does not.
func TestTrustDiffers(t *testing.T) {
	dir := t.TempDir()
	a, b := testpki.NewCA(t, "a").PEM, testpki.NewCA(t, "b").PEM
	aFile, bFile := filepath.Join(dir, "a.pem"), filepath.Join(dir, "b.pem")
	os.WriteFile(aFile, []byte(a), 0o644)
	os.WriteFile(bFile, []byte(b), 0o644)
	m := &Manager{Home: store.Home(t.TempDir()), Trust: Trust{CAFiles: []string{aFile, bFile}}}
	clone := func(name string, cas ...string) {
		l := m.Home.Sandbox(name)
		os.MkdirAll(l.Dir, 0o700)
		if err := store.WriteJSON(l.Config(), store.SandboxConfig{Name: name, CACerts: cas}); err != nil {
			t.Fatal(err)
		}
	}
	clone("same", b, a)
	clone("fewer", a)
	clone("none")
	clone("other", a, testpki.NewCA(t, "c").PEM)
	if why := m.TrustDiffers("same"); why != "" {
		t.Errorf("same CAs: %q", why)
	}
	for _, n := range []string{"fewer", "none", "other", "missing"} {
		if why := m.TrustDiffers(n); why == "" {
			t.Errorf("%s: fits", n)
		}
	}
	if why := (&Manager{Home: m.Home}).TrustDiffers("none"); why != "" {
		t.Errorf("no CAs on either side: %q", why)
	}
}
