package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// serve runs paddock serve for e on a free loopback port until the test
// ends, and returns its base URL and a func that stops it.
func (e *env) serve(t testing.TB, extra ...string) (string, func()) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cmd := exec.Command(e.bin, append([]string{"serve", "--listen", addr, "--base-template", "tiny"}, extra...)...)
	cmd.Env = append(os.Environ(), "PADDOCK_HOME="+e.home)
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stop := func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("paddock serve:\n%s", tail(log.String(), 3000))
		}
	})
	base := "http://" + addr
	deadline := time.Now().Add(10 * time.Second)
	for {
		r, err := http.Get(base + "/health")
		if err == nil {
			r.Body.Close()
			if r.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("paddock serve did not answer within 10 s: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return base, stop
}

// call makes one API request and returns the status and decoded body.
func call(t *testing.T, method, url, key string, body []byte) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, url, bytes.NewReader(body))
	if key != "" {
		req.Header.Set("X-API-Key", key)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	json.Unmarshal(b, &m)
	return resp.StatusCode, m
}

// The e2b npm package, unmodified, drives paddock serve: test/e2b.
func TestE2BSDK(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatal("node is needed for the E2B SDK tests: run make test-deps (Node.js 20.18 or later, with npm)")
	}
	dir, _ := filepath.Abs("../e2b")
	if out, err := exec.Command("npm", "ci", "--no-audit", "--no-fund", "--prefix", dir).CombinedOutput(); err != nil {
		t.Fatalf("npm ci in %s: %v\n%s", dir, err, out)
	}
	e := newEnv(t, "tiny", "debian")
	keyA := strings.TrimSpace(e.ok("apikey", "create", "a"))
	keyB := strings.TrimSpace(e.ok("apikey", "create", "b"))
	base, _ := e.serve(t)
	cmd := exec.Command(node, "--test", "--test-concurrency=1", dir)
	cmd.Env = append(os.Environ(), "E2B_API_URL="+base, "E2B_SANDBOX_URL="+base, "E2B_API_KEY="+keyA,
		"PADDOCK_OTHER_KEY="+keyB, "PADDOCK_TEMPLATE=tiny", "PADDOCK_SHELL_TEMPLATE=debian",
		"PADDOCK_BIN="+e.bin, "PADDOCK_HOME="+e.home)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the E2B SDK tests failed: %v\n%s", err, out)
	}
	if !bytes.Contains(out, []byte("# fail 0")) || bytes.Contains(out, []byte("# pass 0")) {
		t.Fatalf("the E2B SDK tests ran nothing or failed:\n%s", out)
	}
	t.Logf("%s", tail(string(out), 600))
}

// What the SDK cannot send: error bodies, an oversized body, an unknown
// route, what paddock does not support, the keys' ownership on the CLI's
// side, and a restart of serve that loses nothing.
func TestAPIErrorsAndRestart(t *testing.T) {
	e := newEnv(t, "tiny")
	key := strings.TrimSpace(e.ok("apikey", "create", "ci-bot"))
	if out := e.ok("apikey", "ls"); !strings.Contains(out, "ci-bot") || strings.Contains(out, key[4:]) {
		t.Fatalf("apikey ls:\n%s", out)
	}
	base, stop := e.serve(t)
	apiRequestErrors(t, base, key)
	id := apiCreate(t, e, base, key)
	apiLogs(t, base, key, id)
	apiMetricsAndTemplates(t, base, key, id)

	// serve restarts; the sandbox lives on, its deadline with it.
	stop()
	base, _ = e.serve(t)
	if code, body := call(t, "GET", base+"/sandboxes/"+id, key, nil); code != 200 || body["state"] != "running" {
		t.Fatalf("after a restart of serve: %d %v", code, body)
	}
	if code, _ := call(t, "DELETE", base+"/sandboxes/"+id, key, nil); code != 204 {
		t.Fatalf("kill: %d", code)
	}
	if _, err := os.Stat(filepath.Join(e.home, "sandboxes", id)); err == nil {
		t.Error("a killed sandbox is still on disk")
	}

	apiCaps(t, e, key, stop)

	// Plain HTTP beyond loopback is refused unless asked for.
	_, errs, code := e.run("serve", "--listen", "0.0.0.0:0")
	if code == 0 || !strings.Contains(errs, "--insecure-listen") {
		t.Errorf("serve on 0.0.0.0 without TLS: %d %s", code, errs)
	}
}

// apiRequestErrors: no key, a body too big, an unknown route, an
// unsupported field and broken JSON each get their status and a message.
func apiRequestErrors(t *testing.T, base, key string) {
	code, body := call(t, "GET", base+"/v2/sandboxes", "", nil)
	if code != 401 || body["code"] != float64(401) || !strings.Contains(fmt.Sprint(body["message"]), "API key") {
		t.Errorf("no key: %d %v", code, body)
	}
	big := []byte(`{"templateID":"tiny","metadata":{"x":"` + strings.Repeat("a", 2<<20) + `"}}`)
	if code, body = call(t, "POST", base+"/sandboxes", key, big); code != 413 {
		t.Errorf("2 MiB body: %d %v", code, body)
	}
	if code, body = call(t, "GET", base+"/teams", key, nil); code != 404 || !strings.Contains(fmt.Sprint(body["message"]), "does not serve") {
		t.Errorf("unknown route: %d %v", code, body)
	}
	if code, body = call(t, "POST", base+"/sandboxes", key, []byte(`{"templateID":"tiny","autoResume":{"enabled":true}}`)); code != 400 || !strings.Contains(fmt.Sprint(body["message"]), "autoResume") {
		t.Errorf("autoResume: %d %v", code, body)
	}
	if code, body = call(t, "POST", base+"/sandboxes", key, []byte(`{"templateID":"tiny"`)); code != 400 {
		t.Errorf("broken JSON: %d %v", code, body)
	}
}

// apiCreate makes a sandbox through the API without internet access, with
// an env var envd's /envs gives to its token only, and checks it in the
// CLI; it returns its id.
func apiCreate(t *testing.T, e *env, base, key string) string {
	code, body := call(t, "POST", base+"/sandboxes", key, []byte(`{"templateID":"base","timeout":300,"allow_internet_access":false,"envVars":{"GREETING":"hi"}}`))
	if code != 201 {
		t.Fatalf("create: %d %v", code, body)
	}
	id := fmt.Sprint(body["sandboxID"])
	// envd's GET /envs, with the sandbox's token only.
	envs := func(token string) (int, map[string]any) {
		req, _ := http.NewRequest("GET", base+"/envs", nil)
		req.Header.Set("E2b-Sandbox-Id", id)
		req.Header.Set("X-Access-Token", token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m
	}
	if code, m := envs(fmt.Sprint(body["envdAccessToken"])); code != 200 || m["GREETING"] != "hi" {
		t.Errorf("GET /envs: %d %v", code, m)
	}
	if code, _ := envs("wrong"); code != 404 {
		t.Errorf("GET /envs with a wrong token: %d", code)
	}
	info := e.inspect(id)
	if info.State != "running" {
		t.Fatalf("%s: %+v", id, info)
	}
	if pol := e.ok("policy", "show", id); !strings.Contains(pol, "deny-all") {
		t.Errorf("allow_internet_access false gave:\n%s", pol)
	}
	if out := e.ok("exec", id, "--", "sh", "-c", "pwd; mount | grep -c ' 9p ' || true"); out != "/home/user\n0\n" {
		t.Errorf("an API sandbox has a workspace, or its user is not E2B's: %q", out)
	}
	e.run("exec", id, "--", "sh", "-c", "exit 3")
	return id
}

// apiLogs: the sandbox's commands (and network decisions), filtered.
func apiLogs(t *testing.T, base, key, id string) {
	logs := func(query string) []any {
		t.Helper()
		code, body := call(t, "GET", base+"/v2/sandboxes/"+id+"/logs"+query, key, nil)
		if code != 200 {
			t.Fatalf("logs%s: %d %v", query, code, body)
		}
		l, _ := body["logs"].([]any)
		return l
	}
	msg := func(entry any) string { return fmt.Sprint(entry.(map[string]any)["message"]) }
	if all := logs(""); len(all) < 2 || !strings.Contains(msg(all[0]), "exec sh -c pwd") {
		t.Errorf("logs: %v", all)
	}
	if last := logs("?direction=backward&limit=1"); len(last) != 1 || msg(last[0]) != "exec sh -c exit 3" ||
		last[0].(map[string]any)["fields"].(map[string]any)["exit_code"] != "3" {
		t.Errorf("the last log entry: %v", last)
	}
	if found := logs("?search=mount"); len(found) != 1 {
		t.Errorf("logs searched for mount: %v", found)
	}
	if found := logs("?level=error"); len(found) != 0 {
		t.Errorf("logs at level error (no command failed to start): %v", found)
	}
	if code, body := call(t, "GET", base+"/v2/sandboxes/"+id+"/logs?direction=up", key, nil); code != 400 {
		t.Errorf("logs with a bad direction: %d %v", code, body)
	}
	if code, body := call(t, "GET", base+"/sandboxes/"+id+"/logs?limit=1", key, nil); code != 200 || len(body["logs"].([]any)) != 1 || len(body["logEntries"].([]any)) != 1 {
		t.Errorf("v1 logs: %d %v", code, body)
	}
}

// apiMetricsAndTemplates: metrics of several sandboxes; the templates the
// key may create from.
func apiMetricsAndTemplates(t *testing.T, base, key, id string) {
	if code, body := call(t, "GET", base+"/sandboxes/metrics?sandbox_ids="+id+",no-such", key, nil); code != 200 {
		t.Errorf("metrics: %d %v", code, body)
	} else if m, _ := body["sandboxes"].(map[string]any)[id].(map[string]any); m == nil || m["memTotal"].(float64) <= 0 || len(body["sandboxes"].(map[string]any)) != 1 {
		t.Errorf("metrics: %v", body)
	}
	req, _ := http.NewRequest("GET", base+"/templates", nil)
	req.Header.Set("X-API-Key", key)
	if resp, err := http.DefaultClient.Do(req); err != nil {
		t.Error(err)
	} else {
		var tpls []struct {
			TemplateID  string   `json:"templateID"`
			Names       []string `json:"names"`
			BuildStatus string   `json:"buildStatus"`
		}
		json.NewDecoder(resp.Body).Decode(&tpls)
		resp.Body.Close()
		found := false
		for _, tp := range tpls {
			if tp.TemplateID == "tiny" {
				found = slices.Contains(tp.Names, "base") && tp.BuildStatus == "ready"
			}
		}
		if !found {
			t.Errorf("GET /templates: tiny, named base too, is not listed ready: %+v", tpls)
		}
	}
}

// apiCaps restarts serve with per-key caps: sandboxes at once, and
// requests a second; 429 beyond.
func apiCaps(t *testing.T, e *env, key string, stop func()) {
	stop()
	base, _ := e.serve(t, "--max-sandboxes", "1", "--rate", "2", "--burst", "3")
	if code, body := call(t, "POST", base+"/sandboxes", key, []byte(`{"templateID":"tiny","timeout":60}`)); code != 201 {
		t.Fatalf("create under the cap: %d %v", code, body)
	}
	if code, body := call(t, "POST", base+"/sandboxes", key, []byte(`{"templateID":"tiny","timeout":60}`)); code != 429 || !strings.Contains(fmt.Sprint(body["message"]), "cap") {
		t.Errorf("create over the cap: %d %v", code, body)
	}
	limited := 0
	for range 10 {
		if code, _ := call(t, "GET", base+"/v2/sandboxes", key, nil); code == 429 {
			limited++
		}
	}
	if limited == 0 {
		t.Error("10 requests at once over --rate 2 --burst 3: none refused")
	}
}

// create --ttl: the supervisor removes the sandbox at its deadline.
func TestTTL(t *testing.T) {
	e := newEnv(t, "tiny")
	_, errs, code := e.run("create", "--name", "bad", "--template", "tiny", "--ttl", "-5s")
	if code == 0 || !strings.Contains(errs, "--ttl") {
		t.Fatalf("negative --ttl: %d %s", code, errs)
	}
	// The TTL counts from when the sandbox is ready, even when this first
	// create also makes the template's saved VM.
	e.create("short", "--ttl", "6s")
	var info struct {
		Deadline time.Time `json:"deadline"`
	}
	json.Unmarshal([]byte(e.ok("inspect", "short")), &info)
	if d := time.Until(info.Deadline); d <= 0 || d > 6*time.Second {
		t.Fatalf("deadline %v (in %v)", info.Deadline, d)
	}
	waitFor(t, "the sandbox to be removed at its deadline", 30*time.Second, func() bool {
		_, err := os.Stat(filepath.Join(e.home, "sandboxes", "short"))
		return os.IsNotExist(err)
	})
}

// serve --allow-workspace-root: a create may share a host folder under the
// root (metadata paddock.workspace), and nothing else.
func TestAPIWorkspaceRoot(t *testing.T) {
	e := newEnv(t, "tiny")
	key := strings.TrimSpace(e.ok("apikey", "create", "ws"))
	root := t.TempDir()
	proj := filepath.Join(root, "proj")
	os.Mkdir(proj, 0o700)
	os.WriteFile(filepath.Join(proj, "hello.txt"), []byte("from the host\n"), 0o600)
	base, _ := e.serve(t, "--allow-workspace-root", root)

	body, _ := json.Marshal(map[string]any{"templateID": "tiny", "timeout": 120, "metadata": map[string]string{"paddock.workspace": proj}})
	code, resp := call(t, "POST", base+"/sandboxes", key, body)
	if code != 201 {
		t.Fatalf("create with a workspace under the root: %d %v", code, resp)
	}
	id := fmt.Sprint(resp["sandboxID"])
	if out := e.ok("exec", id, "--", "sh", "-c", "cat "+proj+"/hello.txt; echo made > "+proj+"/new.txt"); out != "from the host\n" {
		t.Errorf("the workspace in the guest: %q", out)
	}
	if b, err := os.ReadFile(filepath.Join(proj, "new.txt")); err != nil || string(b) != "made\n" {
		t.Errorf("a file the guest wrote, on the host: %q %v", b, err)
	} else if owner := fileOwner(t, filepath.Join(proj, "new.txt")); owner != os.Getuid() {
		t.Errorf("a file the guest wrote belongs to uid %d on the host, not the folder's owner %d", owner, os.Getuid())
	}
	for _, bad := range []string{root, t.TempDir(), filepath.Join(root, "none"), "proj"} {
		body, _ := json.Marshal(map[string]any{"templateID": "tiny", "metadata": map[string]string{"paddock.workspace": bad}})
		if code, resp := call(t, "POST", base+"/sandboxes", key, body); code != 400 {
			t.Errorf("workspace %q: %d %v", bad, code, resp)
		}
	}
	call(t, "DELETE", base+"/sandboxes/"+id, key, nil)
}

func fileOwner(t *testing.T, p string) int {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(p, &st); err != nil {
		t.Fatal(err)
	}
	return int(st.Uid)
}

// The API's network settings are enforced, at create and live: a host of
// the test's own (a network namespace) is reached only when allowOut
// names it.
func TestAPINetworkEnforced(t *testing.T) {
	e := newEnv(t, "tiny")
	key := strings.TrimSpace(e.ok("apikey", "create", "net"))
	th := newTestHost(t)
	l, _ := th.listen(t, "tcp", th.addr+":8080")
	hits := &hitCounter{}
	go (&http.Server{Handler: hits.handler("hello from the test host")}).Serve(l)
	t.Cleanup(func() { l.Close() })
	base, _ := e.serve(t)
	create := func(network string) string {
		t.Helper()
		code, body := call(t, "POST", base+"/sandboxes", key, []byte(`{"templateID":"tiny","timeout":120,"network":`+network+`}`))
		if code != 201 {
			t.Fatalf("create with network %s: %d %v", network, code, body)
		}
		return fmt.Sprint(body["sandboxID"])
	}
	open := create(`{"denyOut":["0.0.0.0/0"],"allowOut":["` + th.addr + `"]}`)
	closed := create(`{"denyOut":["0.0.0.0/0"]}`)
	get := httpGet(th.addr, 8080, th.addr)
	if out := e.sh(open, get); !strings.Contains(out, "200 OK") || hits.n.Load() != 1 {
		t.Fatalf("allowOut %s: %q, %d hits", th.addr, out, hits.n.Load())
	}
	if out := e.sh(closed, get); answered(out) || hits.n.Load() != 1 {
		t.Fatalf("deny-all reached the test host: %q, %d hits", out, hits.n.Load())
	}
	if code, body := call(t, "PUT", base+"/sandboxes/"+closed+"/network", key, []byte(`{"denyOut":["0.0.0.0/0"],"allowOut":["`+th.addr+`"]}`)); code != 204 {
		t.Fatalf("PUT network: %d %v", code, body)
	}
	if out := e.sh(closed, get); !strings.Contains(out, "200 OK") || hits.n.Load() != 2 {
		t.Fatalf("after allowing it live: %q, %d hits", out, hits.n.Load())
	}
}
