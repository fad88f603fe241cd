package e2e

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/paddock-dev/paddock/internal/testpki"
)

// testPKI is a test certificate authority and a server certificate it
// signed for some names.
type testPKI struct {
	caPEM  string
	server tls.Certificate
}

func newTestPKI(t testing.TB, names ...string) testPKI {
	t.Helper()
	ca := testpki.NewCA(t, "paddock e2e test CA for "+names[0])
	return testPKI{caPEM: ca.PEM, server: ca.Server(t, names...)}
}

// runWithEnv runs paddock with more environment variables.
func (e *env) runWithEnv(extra []string, args ...string) (string, string, int) {
	e.t.Helper()
	cmd := exec.Command(e.bin, args...)
	cmd.Env = append(append(os.Environ(), "PADDOCK_HOME="+e.home), extra...)
	cmd.Dir = e.ws
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return out.String(), errb.String(), ee.ExitCode()
		}
		e.t.Fatalf("run paddock %v: %v", args, err)
	}
	return out.String(), errb.String(), 0
}

const trustClientSrc = `package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

// Fetches https://NAME/ with Go's default roots.
func main() {
	c := &http.Client{Timeout: 20 * time.Second}
	resp, err := c.Get("https://" + os.Args[1] + "/")
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	b, _ := io.ReadAll(resp.Body)
	fmt.Printf("%d %s\n", resp.StatusCode, b)
}
`

// Extra CAs in the guest: an HTTPS server and a registry in a network
// namespace, signed by a test CA, are refused without --ca and trusted
// with it by curl, Python, Node, a Go program and the guest's dockerd;
// --trust-host-ca takes the host's SSL_CERT_FILE; a fork of a checkpoint
// keeps the CA, in the bundle once; bad --ca files make nothing.
func TestGuestTrustsExtraCAs(t *testing.T) {
	e := newEnv(t, "debian")
	th := newTestHost(t)
	pki := newTestPKI(t, "secure.test")
	caFile := filepath.Join(t.TempDir(), "testca.pem")
	os.WriteFile(caFile, []byte(pki.caPEM), 0o644)

	// One server: the registry under /v2/, a greeting elsewhere.
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	mux := http.NewServeMux()
	mux.Handle("/v2/", reg)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello over trusted tls") })
	l, _ := th.listen(t, "tcp", th.addr+":443")
	srv := &http.Server{Handler: mux, TLSConfig: &tls.Config{Certificates: []tls.Certificate{pki.server}}, ErrorLog: log.New(io.Discard, "", 0)}
	go srv.ServeTLS(l, "", "")
	t.Cleanup(func() { srv.Close() })
	// The test pushes over a plain loopback server sharing the registry.
	push := httptest.NewServer(reg)
	t.Cleanup(push.Close)
	ref, err := name.ParseReference(strings.TrimPrefix(push.URL, "http://") + "/test/app:1")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, testImage(t, 0)); err != nil {
		t.Fatalf("push the test image: %v", err)
	}
	// A second CA, given only to a fork, and a registry it signed.
	pki2 := newTestPKI(t, "secure2.test")
	ca2File := filepath.Join(t.TempDir(), "testca2.pem")
	os.WriteFile(ca2File, []byte(pki2.caPEM), 0o644)
	l2, _ := th.listen(t, "tcp", th.addr+":8443")
	srv2 := &http.Server{Handler: mux, TLSConfig: &tls.Config{Certificates: []tls.Certificate{pki2.server}}, ErrorLog: log.New(io.Discard, "", 0)}
	go srv2.ServeTLS(l2, "", "")
	t.Cleanup(func() { srv2.Close() })
	guestProgram(t, e.ws, "trustclient", trustClientSrc)
	netFlags := []string{"--memory", "1G", "--workspace", e.ws, "--policy", "deny-all", "--allow-host", "secure.test", "--allow-host", "secure2.test:8443",
		"--add-host", "secure.test:" + th.addr, "--add-host", "secure2.test:" + th.addr, "--allow-cidr", th.addr + "/32"}
	curl := "curl -sS --max-time 20 https://secure.test/; echo \" rc=$?\""

	sb := &trustBox{e: e, caFile: caFile, ca2File: ca2File, curl: curl, netFlags: netFlags, pki: pki, pki2: pki2}
	t.Run("bad --ca files are refused and nothing is made", sb.badCAFiles)
	t.Run("without --ca the server's certificate is refused", sb.withoutCA)
	t.Run("with --ca curl, python, node, go and docker pull trust it", sb.withCA)
	t.Run("a fork of a checkpoint keeps the CA, in the bundle once", sb.forkKeepsCA)
	t.Run("a fork given another CA: its dockerd, which pulled before, trusts it too", sb.forkOtherCA)
	t.Run("--trust-host-ca takes the host's SSL_CERT_FILE", sb.hostCA)
}

// trustBox is TestGuestTrustsExtraCAs's sandbox, which every subtest uses.
type trustBox struct {
	e        *env
	caFile   string
	ca2File  string
	curl     string
	netFlags []string
	pki      testPKI
	pki2     testPKI
}

func (sb *trustBox) badCAFiles(t *testing.T) {
	e := sb.e.with(t)
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.pem")
	os.WriteFile(garbage, []byte("not a certificate\n"), 0o644)
	keyFile := filepath.Join(dir, "key.pem")
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	kder, _ := x509.MarshalECPrivateKey(k)
	os.WriteFile(keyFile, append([]byte(sb.pki.caPEM), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})...), 0o600)
	cfgDir := t.TempDir()
	os.MkdirAll(filepath.Join(cfgDir, "paddock"), 0o755)
	os.WriteFile(filepath.Join(cfgDir, "paddock", "config.yaml"), []byte("ca: [missing-from-config.pem]\n"), 0o644)
	for _, c := range []struct {
		env  []string
		args []string
		want []string
	}{
		{nil, []string{"--ca", filepath.Join(dir, "missing.pem")}, []string{"missing.pem", "no such file"}},
		{nil, []string{"--ca", garbage}, []string{"garbage.pem", "no PEM certificate"}},
		{nil, []string{"--ca", keyFile}, []string{"key.pem", "EC PRIVATE KEY", "never a key"}},
		{[]string{"XDG_CONFIG_HOME=" + cfgDir}, []string{"--ca", sb.caFile}, []string{filepath.Join(cfgDir, "paddock", "missing-from-config.pem")}},
	} {
		args := append([]string{"create", "--name", "bad", "--template", "tiny", "--workspace", e.ws}, c.args...)
		_, errs, code := e.runWithEnv(c.env, args...)
		for _, w := range c.want {
			if code == 0 || !strings.Contains(errs, w) {
				t.Errorf("create %v: exit %d, stderr %q; want an error with %q", c.args, code, errs, w)
			}
		}
	}
	if ls := e.ok("ls", "--json"); strings.Contains(ls, "bad") {
		t.Fatalf("a refused create left %s", ls)
	}
}

func (sb *trustBox) withoutCA(t *testing.T) {
	e := sb.e.with(t)
	e.ok(append([]string{"create", "--name", "plain"}, sb.netFlags...)...)
	defer e.run("rm", "-f", "plain")
	out := e.sh("plain", sb.curl+"; "+e.ws+"/trustclient secure.test")
	if !strings.Contains(out, "rc=60") || !strings.Contains(out, "certificate") || !strings.Contains(out, "x509") || strings.Contains(out, "hello over") {
		t.Fatalf("without the CA: %q; want curl's exit 60 and Go's x509 error", out)
	}
}

func (sb *trustBox) withCA(t *testing.T) {
	e := sb.e.with(t)
	e.ok(append([]string{"create", "--name", "ca", "--ca", sb.caFile}, sb.netFlags...)...)
	checks := map[string]string{
		"curl":   sb.curl,
		"python": `python3 -c 'import urllib.request; print(urllib.request.urlopen("https://secure.test/", timeout=20).read().decode())'`,
		"node":   `node -e 'require("https").get("https://secure.test/", r => { let d = ""; r.on("data", c => d += c); r.on("end", () => console.log(d)) }).on("error", e => { console.log("error", e.message); process.exit(1) })'`,
		"go":     e.ws + "/trustclient secure.test",
	}
	for client, script := range checks {
		start := time.Now()
		if out := e.sh("ca", script); !strings.Contains(out, "hello over trusted tls") {
			t.Errorf("%s with the CA: %q", client, out)
		} else {
			t.Logf("%s trusts the CA (%s)", client, time.Since(start).Round(time.Millisecond))
		}
	}
	env := e.sh("ca", "env")
	for _, want := range []string{"SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt", "REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt", "NODE_EXTRA_CA_CERTS=/run/paddock/ca-certificates.crt", "DENO_CERT=/run/paddock/ca-certificates.crt", "AWS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt"} {
		if !strings.Contains(env, want) {
			t.Errorf("exec env lacks %s:\n%s", want, env)
		}
	}
	if out := e.sh("ca", "ls /usr/local/share/ca-certificates/"); strings.Count(out, "paddock-") != 2 {
		t.Errorf("local copies (the install's CA and the test CA): %q", out)
	}
	start := time.Now()
	if out := e.sh("ca", "docker pull -q secure.test/test/app:1 && docker run --rm secure.test/test/app:1 echo pulled-and-ran"); !strings.Contains(out, "pulled-and-ran") {
		t.Errorf("docker pull through the CA: %q", out)
	} else {
		t.Logf("docker pull and run (%s)", time.Since(start).Round(time.Millisecond))
	}
	var info struct {
		CACerts []struct{ Subject, SHA256 string } `json:"ca_certs"`
	}
	raw := e.ok("inspect", "ca")
	json.Unmarshal([]byte(raw), &info)
	if len(info.CACerts) != 1 || !strings.Contains(info.CACerts[0].Subject, "paddock e2e test CA") || len(info.CACerts[0].SHA256) != 64 || strings.Contains(raw, "BEGIN CERTIFICATE") {
		t.Errorf("inspect: %s", raw)
	}
}

func (sb *trustBox) forkKeepsCA(t *testing.T) {
	e := sb.e.with(t)
	e.ok("checkpoint", "ca", "ck")
	e.run("rm", "-f", "ca")
	e.ok("create", "--name", "fork", "--from", "ck", "--workspace", e.ws)
	bundle := e.sh("fork", "cat /etc/ssl/certs/ca-certificates.crt")
	if n := strings.Count(bundle, sb.pki.caPEM); n != 1 {
		t.Errorf("the fork's bundle holds the test CA %d times", n)
	}
	if out := e.sh("fork", sb.curl); !strings.Contains(out, "hello over trusted tls") {
		t.Errorf("curl in the fork: %q", out)
	}
	e.run("rm", "-f", "fork")
}

func (sb *trustBox) forkOtherCA(t *testing.T) {
	e := sb.e.with(t)
	e.ok("create", "--name", "fork2", "--from", "ck", "--workspace", e.ws, "--ca", sb.ca2File)
	defer e.run("rm", "-f", "fork2")
	bundle := e.sh("fork2", "cat /etc/ssl/certs/ca-certificates.crt")
	if strings.Count(bundle, sb.pki.caPEM) != 1 || strings.Count(bundle, sb.pki2.caPEM) != 1 {
		t.Errorf("the fork's bundle holds the CAs %d and %d times", strings.Count(bundle, sb.pki.caPEM), strings.Count(bundle, sb.pki2.caPEM))
	}
	start := time.Now()
	if out := e.sh("fork2", "docker pull -q secure2.test:8443/test/app:1"); !strings.Contains(out, "secure2.test:8443/test/app:1") {
		t.Errorf("docker pull through the fork's new CA: %q", out)
	} else {
		t.Logf("docker pull after dockerd's restart (%s)", time.Since(start).Round(time.Millisecond))
	}
	if out := e.sh("fork2", "curl -sS --max-time 20 https://secure2.test:8443/"); !strings.Contains(out, "hello over trusted tls") {
		t.Errorf("curl through the fork's new CA: %q", out)
	}
}

func (sb *trustBox) hostCA(t *testing.T) {
	e := sb.e.with(t)
	args := append([]string{"create", "--name", "hostca", "--trust-host-ca"}, sb.netFlags...)
	if out, errs, code := e.runWithEnv([]string{"SSL_CERT_FILE=" + sb.caFile}, args...); code != 0 {
		t.Fatalf("create --trust-host-ca: exit %d: %s%s", code, out, errs)
	}
	defer e.run("rm", "-f", "hostca")
	if out := e.sh("hostca", sb.curl); !strings.Contains(out, "hello over trusted tls") {
		t.Errorf("curl with the host's CA: %q", out)
	}
}

// An imported image without ca-certificates gets Debian's bundle path,
// holding the sandbox's CAs, and the variables that name it.
func TestImportedImageTrustsCA(t *testing.T) {
	e := importEnv(t)
	pki := newTestPKI(t, "secure.test")
	caFile := filepath.Join(t.TempDir(), "testca.pem")
	os.WriteFile(caFile, []byte(pki.caPEM), 0o644)
	oci := filepath.Join(e.home, "oci")
	writeLayout(t, testImage(t, 0), oci)
	e.ok("create", "--name", "img", "--image", "oci:"+oci, "--ca", caFile, "--memory", "512M", "--cpus", "1", "--workspace", e.ws)
	out := e.ok("exec", "img", "--", "sh", "-c", "cat /etc/ssl/certs/ca-certificates.crt; echo \"vars $SSL_CERT_FILE $NODE_EXTRA_CA_CERTS\"; cat /run/paddock/ca-certificates.crt")
	if strings.Count(out, pki.caPEM) != 2 || strings.Count(out, "BEGIN CERTIFICATE") != 4 {
		t.Errorf("the bundle and the CA file should hold the install's CA and the test CA:\n%s", out)
	}
	if !strings.Contains(out, "vars /etc/ssl/certs/ca-certificates.crt /run/paddock/ca-certificates.crt") {
		t.Errorf("exec env:\n%s", out)
	}
}
