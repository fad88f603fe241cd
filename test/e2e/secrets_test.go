package e2e

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/paddock-dev/paddock/internal/testpki"
)

// upstreamCA writes pki's authority to a file for PADDOCK_UPSTREAM_CA and
// returns its path: the supervisor's injector then trusts the upstream.
func upstreamCA(t testing.TB, pki testPKI) string {
	p := filepath.Join(t.TempDir(), "upstream-ca.pem")
	if err := os.WriteFile(p, []byte(pki.caPEM), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// seenRequest is what the upstream test server saw of one request.
type seenRequest struct {
	Host, Method, Path, Proto, Key, Auth string
}

// upstream is an HTTPS server that records every request's credentials.
type upstream struct {
	mu   sync.Mutex
	seen []seenRequest
}

func (u *upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u.mu.Lock()
	u.seen = append(u.seen, seenRequest{Host: r.Host, Method: r.Method, Path: r.URL.Path, Proto: r.Proto, Key: r.Header.Get("X-Api-Key"), Auth: r.Header.Get("Authorization")})
	u.mu.Unlock()
	if r.URL.Path == "/redirect" {
		http.Redirect(w, r, "/echo", http.StatusFound)
		return
	}
	w.Write([]byte("upstream ok\n"))
}

// take returns the requests seen since the last take.
func (u *upstream) take() []seenRequest {
	u.mu.Lock()
	defer u.mu.Unlock()
	s := u.seen
	u.seen = nil
	return s
}

// startUpstream serves h over TLS (HTTP/2 and HTTP/1.1) in the test's
// network namespace on port 443, with pki's server certificate.
func startUpstream(t testing.TB, th *testHost, pki testPKI, h http.Handler) {
	serveUpstream(t, th, pki, h, "443")
}

// serveUpstream is startUpstream on port.
func serveUpstream(t testing.TB, th *testHost, pki testPKI, h http.Handler, port string) {
	l, _ := th.listen(t, "tcp", th.addr+":"+port)
	srv := httptest.NewUnstartedServer(h)
	srv.Listener.Close()
	srv.Listener = l
	srv.EnableHTTP2 = true
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{pki.server}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
}

// The secret values TestSecretInjection sets. secretControl is passed with
// -e, into the VM on purpose: the scan for values must find it, or it
// proves nothing.
const (
	secretV1, secretV2, secretOther = "s3cr3t-value-one", "s3cr3t-value-two", "other-secret-value"
	secretPort                      = "port-8443-secret-value"
	secretControl                   = "control-value-in-the-vm"
)

// TestSecretInjection: a bound secret's value reaches its host in place of
// the placeholder, over HTTP/2 and HTTP/1.1, for HEAD and across a
// redirect; the placeholder bound for another host is refused before it
// leaves; a changed secret counts at the next request; a failing command
// answers 502; and no file of the sandbox or its checkpoint holds a value.
func TestSecretInjection(t *testing.T) {
	pki := newTestPKI(t, "api.test", "other.test", "fail.test")
	t.Setenv("PADDOCK_UPSTREAM_CA", upstreamCA(t, pki))
	e := newEnv(t, "debian")
	th := newTestHost(t)
	up := &upstream{}
	startUpstream(t, th, pki, up)
	serveUpstream(t, th, pki, up, "8443")

	e.runOK(secretV1+"\n", "secret", "set", "t", "--host", "api.test", "--header", "X-Api-Key", "--stdin")
	e.runOK(secretOther+"\n", "secret", "set", "o", "--host", "other.test", "--header", "X-Api-Key", "--stdin")
	e.ok("secret", "set", "f", "--host", "fail.test", "--header", "X-Api-Key", "--command", "echo no token here >&2; exit 3")

	if _, errs, code := e.run("create", "--name", "bad", "--secret", "nosuch"); code == 0 || !strings.Contains(errs, `no secret named "nosuch"`) {
		t.Fatalf("create --secret nosuch: exit %d, %q", code, errs)
	}
	if _, err := os.Stat(filepath.Join(e.home, "sandboxes", "bad")); !os.IsNotExist(err) {
		t.Fatalf("a refused create left %v", err)
	}

	e.ok("create", "--name", "sec", "--template", "debian", "--memory", "1G", "--cpus", "1", "--workspace", e.ws,
		"--secret", "t", "--secret", "o", "--secret", "f", "-e", "CONTROL="+secretControl,
		"--policy", "deny-all", "--allow-host", "api.test", "--allow-host", "api.test:8443", "--allow-host", "other.test", "--allow-host", "fail.test",
		"--add-host", "api.test:"+th.addr, "--add-host", "other.test:"+th.addr, "--add-host", "fail.test:"+th.addr,
		"--allow-cidr", th.addr+"/32")

	placeholder := strings.TrimSpace(e.sh("sec", `printf %s "$T"`))
	if !regexp.MustCompile(`^paddock-secret-t-[0-9a-f]{24}$`).MatchString(placeholder) {
		t.Fatalf("$T in the guest is %q, want the placeholder", placeholder)
	}

	sb := &secretBox{e: e, up: up, placeholder: placeholder}
	t.Run("HTTP/2 carries the value in place of the placeholder", sb.http2)
	t.Run("HTTP/1.1, HEAD and a redirect keep it", sb.http11)
	t.Run("a request without the header gets it set", sb.headerSet)
	t.Run("the placeholder sent to another host is refused before it leaves", sb.otherHost)
	t.Run("a changed secret counts at the next request", sb.changed)
	t.Run("a secret unbound and bound again while the sandbox runs", sb.rebound)
	t.Run("a secret for another port than 443", sb.otherPort)
	t.Run("a failing command answers 502 and sends nothing", sb.failingCommand)
	t.Run("policy show, inspect and policy log name the secrets, never a value", sb.named)
	t.Run("no value in any file of the sandbox or its checkpoint", sb.noValue)
}

// secretBox is TestSecretInjection's sandbox, which every subtest uses.
type secretBox struct {
	e           *env
	up          *upstream
	placeholder string
}

func (sb *secretBox) http2(t *testing.T) {
	if out := sb.curl(`-H "X-Api-Key: $T" https://api.test/echo`); out != "200 2" {
		t.Fatalf("curl: %q, want 200 over HTTP/2", out)
	}
	expectRequests(t, "h2", sb.up.take(), seenRequest{Host: "api.test", Method: "GET", Path: "/echo", Proto: "HTTP/2.0", Key: secretV1})
}

func (sb *secretBox) http11(t *testing.T) {
	if out := sb.curl(`--http1.1 -H "X-Api-Key: $T" https://api.test/echo`); out != "200 1.1" {
		t.Fatalf("curl --http1.1: %q", out)
	}
	if out := sb.curl(`-I -H "X-Api-Key: $T" https://api.test/echo`); out != "200 2" {
		t.Fatalf("curl -I: %q", out)
	}
	if out := sb.curl(`-L -H "X-Api-Key: $T" https://api.test/redirect`); out != "200 2" {
		t.Fatalf("curl -L: %q", out)
	}
	expectRequests(t, "h1, HEAD, redirect", sb.up.take(),
		seenRequest{Host: "api.test", Method: "GET", Path: "/echo", Proto: "HTTP/1.1", Key: secretV1},
		seenRequest{Host: "api.test", Method: "HEAD", Path: "/echo", Key: secretV1},
		seenRequest{Host: "api.test", Method: "GET", Path: "/redirect", Key: secretV1},
		seenRequest{Host: "api.test", Method: "GET", Path: "/echo", Key: secretV1})
}

func (sb *secretBox) headerSet(t *testing.T) {
	if out := sb.curl(`https://api.test/echo`); out != "200 2" {
		t.Fatalf("curl: %q", out)
	}
	expectRequests(t, "no header", sb.up.take(), seenRequest{Host: "api.test", Method: "GET", Path: "/echo", Key: secretV1})
}

func (sb *secretBox) otherHost(t *testing.T) {
	e := sb.e
	out := strings.TrimSpace(e.sh("sec", `curl -sS -H "X-Api-Key: $T" https://other.test/echo; true`))
	if !strings.Contains(out, "not for other.test") {
		t.Fatalf("curl to other.test with t's placeholder: %q", out)
	}
	if got := sb.up.take(); len(got) != 0 {
		t.Fatalf("upstream saw %+v", got)
	}
}

func (sb *secretBox) changed(t *testing.T) {
	e := sb.e
	e.runOK(secretV2+"\n", "secret", "set", "t", "--host", "api.test", "--header", "X-Api-Key", "--stdin")
	if out := sb.curl(`-H "X-Api-Key: $T" https://api.test/echo`); out != "200 2" {
		t.Fatalf("curl: %q", out)
	}
	expectRequests(t, "after set", sb.up.take(), seenRequest{Host: "api.test", Method: "GET", Path: "/echo", Key: secretV2})
	if p := strings.TrimSpace(e.sh("sec", `printf %s "$T"`)); p != sb.placeholder {
		t.Fatalf("the placeholder changed with the value: %q, was %q", p, sb.placeholder)
	}
}

func (sb *secretBox) rebound(t *testing.T) {
	e := sb.e
	if out := e.ok("secret", "unbind", "sec", "t"); out != "sec: secrets bound: o, f\n" {
		t.Fatalf("secret unbind: %q", out)
	}
	if out := e.sh("sec", `printf %s "${T-unset}"`); out != "unset" {
		t.Fatalf("$T after unbind: %q", out)
	}
	// api.test is no longer intercepted: the guest meets the server's own
	// certificate, from a CA it does not trust, and no request is made.
	if out := sb.curl(`-H "X-Api-Key: ` + sb.placeholder + `" https://api.test/echo`); !strings.Contains(out, "certificate") {
		t.Fatalf("curl after unbind: %q, want a certificate error", out)
	}
	if got := sb.up.take(); len(got) != 0 {
		t.Fatalf("after unbind the upstream saw %+v", got)
	}
	if out := e.ok("secret", "bind", "sec", "t"); out != "sec: secrets bound: o, f, t\n" {
		t.Fatalf("secret bind: %q", out)
	}
	if p := e.sh("sec", `printf %s "$T"`); p != sb.placeholder {
		t.Fatalf("$T after bind: %q, want %q", p, sb.placeholder)
	}
	if out := sb.curl(`-H "X-Api-Key: $T" https://api.test/echo`); out != "200 2" {
		t.Fatalf("curl after bind: %q", out)
	}
	expectRequests(t, "after bind", sb.up.take(), seenRequest{Host: "api.test", Method: "GET", Path: "/echo", Key: secretV2})
	if _, errs, code := e.run("secret", "unbind", "sec", "nosuch"); code == 0 || !strings.Contains(errs, `secret "nosuch" is not bound`) {
		t.Fatalf("unbind of a secret not bound: exit %d, %q", code, errs)
	}
	if _, errs, code := e.run("secret", "bind", "sec", "nosuch"); code == 0 || !strings.Contains(errs, `no secret named "nosuch"`) {
		t.Fatalf("bind of a missing secret: exit %d, %q", code, errs)
	}
}

func (sb *secretBox) otherPort(t *testing.T) {
	e := sb.e
	e.runOK(secretPort+"\n", "secret", "set", "p", "--host", "api.test:8443", "--header", "X-Api-Key", "--stdin")
	e.ok("secret", "bind", "sec", "p")
	if out := sb.curl(`-H "X-Api-Key: $P" https://api.test:8443/echo`); out != "200 2" {
		t.Fatalf("curl to api.test:8443: %q", out)
	}
	expectRequests(t, "port 8443", sb.up.take(), seenRequest{Host: "api.test:8443", Method: "GET", Path: "/echo", Key: secretPort})
	// t is for api.test on 443 only.
	out := strings.TrimSpace(e.sh("sec", `curl -sS -H "X-Api-Key: $T" https://api.test:8443/echo; true`))
	if !strings.Contains(out, "not for api.test:8443") {
		t.Fatalf("curl to api.test:8443 with t's placeholder: %q", out)
	}
	if got := sb.up.take(); len(got) != 0 {
		t.Fatalf("upstream saw %+v", got)
	}
	e.ok("secret", "unbind", "sec", "p")
}

func (sb *secretBox) failingCommand(t *testing.T) {
	e := sb.e
	out := strings.TrimSpace(e.sh("sec", `curl -sS -w '\n%{http_code}' https://fail.test/echo; true`))
	if !strings.HasSuffix(out, "502") || !strings.Contains(out, "secret f") {
		t.Fatalf("curl to fail.test: %q", out)
	}
	if got := sb.up.take(); len(got) != 0 {
		t.Fatalf("upstream saw %+v", got)
	}
}

func (sb *secretBox) named(t *testing.T) {
	e := sb.e
	if out := e.ok("policy", "show", "sec"); !strings.Contains(out, "#   t: api.test (guest variable T)") {
		t.Fatalf("policy show:\n%s", out)
	}
	var info struct {
		Secrets []struct{ Name string } `json:"secrets"`
	}
	json.Unmarshal([]byte(e.ok("inspect", "sec")), &info)
	if len(info.Secrets) != 3 || !slices.ContainsFunc(info.Secrets, func(s struct{ Name string }) bool { return s.Name == "t" }) {
		t.Fatalf("inspect secrets: %+v", info.Secrets)
	}
	log := e.ok("policy", "log", "--json", "sec")
	injected, refused := false, false
	for _, line := range strings.Split(log, "\n") {
		var r struct {
			Event, Name, Verdict string
			Secrets              []string
		}
		if json.Unmarshal([]byte(line), &r) != nil || r.Event != "request" {
			continue
		}
		if r.Verdict == "allow" && len(r.Secrets) == 1 && r.Secrets[0] == "t" {
			injected = true
		}
		if r.Verdict == "deny" && r.Name == "other.test" {
			refused = true
		}
	}
	if !injected || !refused {
		t.Fatalf("policy log: injected %v, refused %v:\n%s", injected, refused, log)
	}
}

func (sb *secretBox) noValue(t *testing.T) {
	e := sb.e
	// The guest reads its copy of the variable into memory.
	e.sh("sec", `printf %s "$CONTROL" >/dev/null`)
	e.ok("checkpoint", "sec", "sec-ck")
	var files []string
	for _, dir := range []string{filepath.Join(e.home, "sandboxes"), filepath.Join(e.home, "checkpoints")} {
		found := filesHolding(t, dir, secretV1, secretV2, secretOther, secretPort)
		if len(found) > 0 {
			t.Errorf("files holding a secret's value: %q", found)
		}
		files = append(files, filesHolding(t, dir, secretControl)...)
	}
	if !slices.ContainsFunc(files, func(f string) bool { return strings.HasSuffix(f, "/config.json") }) ||
		!slices.ContainsFunc(files, func(f string) bool { return strings.Contains(f, "checkpoints/sec-ck/") }) {
		t.Fatalf("the -e control value was found only in %q: the scan does not see config.json or the checkpoint", files)
	}
}

// curl runs curl in the sandbox with args and gives its status and HTTP
// version, or its error.
func (sb *secretBox) curl(args string) string {
	return strings.TrimSpace(sb.e.sh("sec", `curl -sS -o /dev/null -w '%{http_code} %{http_version}\n' `+args+` 2>&1; true`))
}

// expectRequests fails unless the upstream saw exactly want (what names
// the case).
func expectRequests(t *testing.T, what string, got []seenRequest, want ...seenRequest) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: upstream saw %+v, want %+v", what, got, want)
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Host != w.Host || g.Method != w.Method || g.Path != w.Path || g.Key != w.Key || (w.Proto != "" && g.Proto != w.Proto) {
			t.Fatalf("%s: request %d: upstream saw %+v, want %+v", what, i, g, w)
		}
	}
}

// filesHolding returns the files under dir that hold any of values.
func filesHolding(t *testing.T, dir string, values ...string) []string {
	t.Helper()
	var found []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		if holds(f, values) {
			found = append(found, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

// holds reads f in blocks (memory files are large) with an overlap as
// long as the longest value, so a value across two blocks is found.
func holds(f *os.File, values []string) bool {
	longest := 0
	for _, v := range values {
		longest = max(longest, len(v))
	}
	buf := make([]byte, 4<<20)
	carry := 0
	for {
		n, err := f.Read(buf[carry:])
		data := buf[:carry+n]
		for _, v := range values {
			if bytes.Contains(data, []byte(v)) {
				return true
			}
		}
		if err != nil {
			return false
		}
		carry = min(longest, len(data))
		copy(buf, data[len(data)-carry:])
	}
}

// TestSecretInjectionDockerPull: the guest's dockerd pulls through the
// injector from a registry that a bound secret is for: it trusts the
// install's authority, and every registry request carries the value.
func TestSecretInjectionDockerPull(t *testing.T) {
	pki := newTestPKI(t, "registry.test")
	t.Setenv("PADDOCK_UPSTREAM_CA", upstreamCA(t, pki))
	e := newEnv(t, "debian")
	th := newTestHost(t)
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	var mu sync.Mutex
	auth := map[string]int{}
	startUpstream(t, th, pki, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		auth[r.Header.Get("Authorization")]++
		mu.Unlock()
		reg.ServeHTTP(w, r)
	}))
	push := httptest.NewServer(reg)
	t.Cleanup(push.Close)
	ref, err := name.ParseReference(strings.TrimPrefix(push.URL, "http://") + "/test/app:1")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, testImage(t, 0)); err != nil {
		t.Fatalf("push the test image: %v", err)
	}
	const value = "registry-token-value"
	e.runOK(value+"\n", "secret", "set", "reg", "--host", "registry.test", "--header", "Authorization", "--format", "Bearer %s", "--stdin")
	e.ok("create", "--name", "dk", "--template", "debian", "--memory", "1G", "--workspace", e.ws, "--secret", "reg",
		"--policy", "deny-all", "--allow-host", "registry.test", "--add-host", "registry.test:"+th.addr, "--allow-cidr", th.addr+"/32")
	if out := e.sh("dk", "docker pull -q registry.test/test/app:1 && docker run --rm registry.test/test/app:1 echo pulled-through-the-injector"); !strings.Contains(out, "pulled-through-the-injector") {
		t.Fatalf("docker pull: %q", out)
	}
	mu.Lock()
	defer mu.Unlock()
	if auth["Bearer "+value] < 3 || len(auth) != 1 {
		t.Fatalf("the registry saw these Authorization headers (count by value): %v", auth)
	}
}

// runOK runs paddock with stdin and fails the test unless it exits 0.
func (e *env) runOK(stdin string, args ...string) string {
	e.t.Helper()
	out, errs, code := e.runIn(stdin, args...)
	if code != 0 {
		e.t.Fatalf("paddock %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errs)
	}
	return out
}

// TestAPISecrets: through paddock serve, a key sets a secret and binds it
// at create, and E2B's network.rules transform.headers becomes a secret of
// the sandbox's own: both reach the upstream, neither enters the VM, and
// the rule's secret goes with the sandbox.
func TestAPISecrets(t *testing.T) {
	pki := newTestPKI(t, "api.test", "rule.test")
	t.Setenv("PADDOCK_UPSTREAM_CA", upstreamCA(t, pki))
	e := newEnv(t, "debian")
	th := newTestHost(t)
	up := &upstream{}
	startUpstream(t, th, pki, up)
	key := strings.TrimSpace(e.ok("apikey", "create", "sec"))
	// serve's sandboxes trust the CAs of the user's config file too.
	cfgHome := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", cfgHome)
	// A relative path in the file is relative to the file's folder.
	corpCA := filepath.Join(cfgHome, "paddock", "corp.pem")
	os.MkdirAll(filepath.Join(cfgHome, "paddock"), 0o700)
	os.WriteFile(corpCA, []byte(testpki.NewCA(t, "corp proxy CA for serve").PEM), 0o600)
	os.WriteFile(filepath.Join(cfgHome, "paddock", "config.yaml"), []byte("ca: [corp.pem]\n"), 0o600)
	base, _ := e.serve(t)

	const keyValue, ruleValue = "api-set-secret-value", "rule-header-value"
	if code, body := call(t, "POST", base+"/secrets", key, []byte(`{"name":"k","value":"`+keyValue+`","hosts":["api.test"],"header":"X-Api-Key"}`)); code != 201 || body["placeholder"] == nil {
		t.Fatalf("POST /secrets: %d %v", code, body)
	}
	code, body := call(t, "POST", base+"/sandboxes", key, []byte(`{"templateID":"debian","timeout":300,"secrets":["k"],
		"network":{"denyOut":["0.0.0.0/0"],"allowOut":["api.test","rule.test","`+th.addr+`"],
		"rules":{"rule.test":[{"transform":{"headers":{"X-Api-Key":"`+ruleValue+`"}}}]}}}`))
	if code != 201 {
		t.Fatalf("create: %d %v", code, body)
	}
	id := fmt.Sprint(body["sandboxID"])
	if out := e.ok("inspect", id); !strings.Contains(out, "CN=corp proxy CA for serve") {
		t.Fatalf("the API's sandbox does not trust the config file's CA:\n%s", out)
	}
	// Map the test names to the test host (the API has no add_hosts).
	pol := e.ok("policy", "show", id) + "add_hosts:\n  api.test: " + th.addr + "\n  rule.test: " + th.addr + "\n"
	polFile := filepath.Join(t.TempDir(), "policy.yaml")
	os.WriteFile(polFile, []byte(pol), 0o644)
	e.ok("policy", "set", id, polFile)

	out := e.sh(id, `curl -sS -o /dev/null -w '%{http_code}\n' -H "X-Api-Key: $K" https://api.test/k; curl -sS -o /dev/null -w '%{http_code}\n' -H "X-Api-Key: the-guest-own" https://rule.test/r; env | grep -c -e `+keyValue+` -e `+ruleValue+`; true`)
	if strings.Fields(out)[0] != "200" || strings.Fields(out)[1] != "200" || strings.Fields(out)[2] != "0" {
		t.Fatalf("guest: %q", out)
	}
	got := up.take()
	// The rule's header replaces the guest's own value, as E2B's does.
	if len(got) != 2 || got[0].Key != keyValue || got[1].Host != "rule.test" || got[1].Key != ruleValue {
		t.Fatalf("upstream saw %+v", got)
	}
	ls := e.ok("secret", "ls", "--json")
	if !strings.Contains(ls, `"`+id+`-rule-1"`) {
		t.Fatalf("the rule's secret is not in the store: %s", ls)
	}
	apiRebind(t, e, base, key, id, up, keyValue)
	apiNetworkRules(t, e, base, key, id, polFile, up, th.addr)
	if code, _ := call(t, "DELETE", base+"/sandboxes/"+id, key, nil); code != 204 {
		t.Fatalf("kill: %d", code)
	}
	if ls := e.ok("secret", "ls", "--json"); strings.Contains(ls, id+"-rule-") || !strings.Contains(ls, `"k"`) {
		t.Fatalf("after the sandbox went, the store holds: %s", ls)
	}
}

// apiRebind: POST /sandboxes/{id}/secrets unbinds the key's secret k from
// its running sandbox and binds it again; other keys' and the CLI's
// secrets, and other keys, are refused.
func apiRebind(t *testing.T, e *env, base, key, id string, up *upstream, keyValue string) {
	url := base + "/sandboxes/" + id + "/secrets"
	if code, body := call(t, "POST", url, key, []byte(`{"unbind":["k"]}`)); code != 200 || fmt.Sprint(body["secrets"]) != "["+id+"-rule-1]" {
		t.Fatalf("unbind k: %d %v", code, body)
	}
	if out := e.sh(id, `printf %s "${K-unset}"`); out != "unset" {
		t.Fatalf("$K after unbind: %q", out)
	}
	if code, body := call(t, "POST", url, key, []byte(`{"bind":["k"]}`)); code != 200 || fmt.Sprint(body["secrets"]) != "["+id+"-rule-1 k]" {
		t.Fatalf("bind k: %d %v", code, body)
	}
	out := e.sh(id, `curl -sS -o /dev/null -w '%{http_code}\n' -H "X-Api-Key: $K" https://api.test/again; true`)
	if got := up.take(); strings.TrimSpace(out) != "200" || len(got) != 1 || got[0].Key != keyValue {
		t.Fatalf("after bind: guest %q, upstream saw %+v", out, got)
	}
	e.runOK("cli-value\n", "secret", "set", "cli", "--host", "api.test", "--header", "X-Cli", "--stdin")
	if code, body := call(t, "POST", url, key, []byte(`{"bind":["cli"]}`)); code != 400 || !strings.Contains(fmt.Sprint(body["message"]), `no secret named "cli" for this key`) {
		t.Fatalf("bind of the CLI's secret: %d %v", code, body)
	}
	other := strings.TrimSpace(e.ok("apikey", "create", "other"))
	if code, _ := call(t, "POST", url, other, []byte(`{"unbind":["k"]}`)); code != 404 {
		t.Fatalf("another key's unbind: %d", code)
	}
}

// apiNetworkRules: PUT /sandboxes/{id}/network replaces the sandbox's
// network.rules secrets (E2B replaces the whole configuration), and one
// without rules clears them.
func apiNetworkRules(t *testing.T, e *env, base, key, id, polFile string, up *upstream, addr string) {
	url := base + "/sandboxes/" + id + "/network"
	const newValue = "rule-value-after-put"
	network := `"denyOut":["0.0.0.0/0"],"allowOut":["api.test","rule.test","` + addr + `"]`
	if code, body := call(t, "PUT", url, key, []byte(`{"rules":{"rule.test":[{"transform":{"headers":{"X-Bad Name":"v"}}}]},`+network+`}`)); code != 400 || !strings.Contains(fmt.Sprint(body["message"]), "invalid header name") {
		t.Fatalf("PUT network with a bad rule: %d %v", code, body)
	}
	if code, body := call(t, "PUT", url, key, []byte(`{"rules":{"rule.test":[{"transform":{"headers":{"X-Api-Key":"`+newValue+`"}}}]},`+network+`}`)); code != 204 {
		t.Fatalf("PUT network with rules: %d %v", code, body)
	}
	ls := e.ok("secret", "ls", "--json")
	if strings.Contains(ls, `"`+id+`-rule-1"`) || !strings.Contains(ls, `"`+id+`-rule-2"`) {
		t.Fatalf("after PUT the store holds: %s", ls)
	}
	e.ok("policy", "set", id, polFile) // the test names' add_hosts again
	out := e.sh(id, `curl -sS -o /dev/null -w '%{http_code}\n' https://rule.test/r; true`)
	if got := up.take(); strings.TrimSpace(out) != "200" || len(got) != 1 || got[0].Key != newValue {
		t.Fatalf("after PUT: guest %q, upstream saw %+v", out, got)
	}
	if code, body := call(t, "PUT", url, key, []byte(`{`+network+`}`)); code != 204 {
		t.Fatalf("PUT network without rules: %d %v", code, body)
	}
	if ls := e.ok("secret", "ls", "--json"); strings.Contains(ls, id+"-rule-") {
		t.Fatalf("PUT without rules left: %s", ls)
	}
	var info struct {
		Secrets []struct{ Name string } `json:"secrets"`
	}
	json.Unmarshal([]byte(e.ok("inspect", id)), &info)
	if len(info.Secrets) != 1 || info.Secrets[0].Name != "k" {
		t.Fatalf("bound after PUT without rules: %+v", info.Secrets)
	}
}
