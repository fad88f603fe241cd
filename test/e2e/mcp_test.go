package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// mcpTools are the tools paddock mcp and /mcp serve.
var mcpTools = []string{
	"sandbox_checkpoint", "sandbox_create", "sandbox_exec", "sandbox_fork", "sandbox_list",
	"sandbox_list_files", "sandbox_policy", "sandbox_read_file", "sandbox_remove", "sandbox_write_file",
}

// mcpCall calls a tool and decodes its structured result into out; it
// fails the test on a tool error unless wantErr, and returns the error text.
func mcpCall(t *testing.T, s *mcp.ClientSession, tool string, args map[string]any, out any) string {
	t.Helper()
	start := time.Now()
	res, err := s.CallTool(context.Background(), &mcp.CallToolParams{Name: tool, Arguments: args})
	if err != nil {
		t.Fatalf("%s: %v", tool, err)
	}
	text := ""
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			text += tc.Text
		}
	}
	if res.IsError {
		if out != nil {
			t.Fatalf("%s %v: tool error: %s", tool, args, text)
		}
		return text
	}
	if out == nil {
		t.Fatalf("%s %v: succeeded, want an error: %s", tool, args, text)
	}
	b, _ := json.Marshal(res.StructuredContent)
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatalf("%s: decode %s: %v", tool, b, err)
	}
	t.Logf("%s (%s)", tool, time.Since(start).Round(time.Millisecond))
	return ""
}

type mcpSandbox struct {
	Name   string `json:"name"`
	Status string `json:"status"`
}

type mcpExec struct {
	Stdout   string `json:"stdout"`
	Stderr   string `json:"stderr"`
	ExitCode int    `json:"exit_code"`
	Note     string `json:"note"`
}

// exerciseMCP runs the flow both transports must serve: list tools, create
// a sandbox (named by the server), exec, write then read a file, list it,
// a denied host in the policy tool and the network log resource, remove.
func exerciseMCP(t *testing.T, e *env, s *mcp.ClientSession) {
	checkTools(t, s)
	var sb mcpSandbox
	mcpCall(t, s, "sandbox_create", map[string]any{"template": "tiny", "memory": "512M", "cpus": 1, "policy": "deny-all"}, &sb)
	if sb.Name == "" || sb.Status != "running" {
		t.Fatalf("created %+v", sb)
	}
	var list struct{ Sandboxes []mcpSandbox }
	mcpCall(t, s, "sandbox_list", nil, &list)
	if len(list.Sandboxes) != 1 || list.Sandboxes[0].Name != sb.Name {
		t.Fatalf("list: %+v", list)
	}
	checkExec(t, s, sb.Name)
	checkFiles(t, s, sb.Name)
	checkDenied(t, e, s, sb.Name)
	var rm struct{ Removed string }
	mcpCall(t, s, "sandbox_remove", map[string]any{"name": sb.Name}, &rm)
	mcpCall(t, s, "sandbox_list", nil, &list)
	if rm.Removed != sb.Name || len(list.Sandboxes) != 0 {
		t.Fatalf("after remove %+v: %+v", rm, list)
	}
}

// checkTools wants exactly mcpTools, each described.
func checkTools(t *testing.T, s *mcp.ClientSession) {
	tools, err := s.ListTools(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tl := range tools.Tools {
		names = append(names, tl.Name)
		if tl.Description == "" || tl.InputSchema == nil {
			t.Errorf("tool %s has no description or input schema", tl.Name)
		}
	}
	slices.Sort(names)
	if !slices.Equal(names, mcpTools) {
		t.Fatalf("tools: %v, want %v", names, mcpTools)
	}
}

// checkExec: output, exit codes, cwd, the output cap, the timeout (the
// command is killed), a missing sandbox.
func checkExec(t *testing.T, s *mcp.ClientSession, name string) {
	var x mcpExec
	mcpCall(t, s, "sandbox_exec", map[string]any{"name": name, "command": "echo hi"}, &x)
	if x.Stdout != "hi\n" || x.ExitCode != 0 || x.Stderr != "" {
		t.Fatalf("echo hi: %+v", x)
	}
	mcpCall(t, s, "sandbox_exec", map[string]any{"name": name, "command": "echo oops >&2; exit 3"}, &x)
	if x.ExitCode != 3 || x.Stderr != "oops\n" {
		t.Fatalf("exit 3: %+v", x)
	}
	mcpCall(t, s, "sandbox_exec", map[string]any{"name": name, "command": "pwd", "cwd": "/tmp"}, &x)
	if x.Stdout != "/tmp\n" {
		t.Fatalf("cwd /tmp: %+v", x)
	}
	mcpCall(t, s, "sandbox_exec", map[string]any{"name": name, "command": "head -c 70000 /dev/zero | tr '\\0' a"}, &x)
	if len(x.Stdout) != 64<<10 || !strings.Contains(x.Note, "stdout cut at 64 KiB") {
		t.Fatalf("70000 bytes of output: %d kept, note %q", len(x.Stdout), x.Note)
	}
	var slow struct {
		ExitCode int  `json:"exit_code"`
		TimedOut bool `json:"timed_out"`
		Note     string
	}
	mcpCall(t, s, "sandbox_exec", map[string]any{"name": name, "command": "echo started; sleep 30", "timeout_s": 1}, &slow)
	if !slow.TimedOut || slow.ExitCode != -1 || !strings.Contains(slow.Note, "timeout_s 1") {
		t.Fatalf("sleep 30 with timeout_s 1: %+v", slow)
	}
	waitFor(t, "the timed-out command to be gone", 10*time.Second, func() bool {
		mcpCall(t, s, "sandbox_exec", map[string]any{"name": name, "command": "ps -o args | grep -c '^sleep 30' || true"}, &x)
		return x.Stdout == "0\n" && x.Stderr == ""
	})
	if msg := mcpCall(t, s, "sandbox_exec", map[string]any{"name": "no-such-sandbox", "command": "true"}, nil); !strings.Contains(msg, "sandbox_list") {
		t.Fatalf("exec in a missing sandbox: %q", msg)
	}
}

// checkFiles writes a file, reads it back and lists its folder.
func checkFiles(t *testing.T, s *mcp.ClientSession, name string) {
	var w struct {
		Path  string
		Bytes int
	}
	mcpCall(t, s, "sandbox_write_file", map[string]any{"name": name, "path": "/tmp/mcp/note.txt", "content": "héllo\nfrom mcp\n"}, &w)
	if w.Path != "/tmp/mcp/note.txt" || w.Bytes != len("héllo\nfrom mcp\n") {
		t.Fatalf("write: %+v", w)
	}
	var r struct{ Content, Encoding string }
	mcpCall(t, s, "sandbox_read_file", map[string]any{"name": name, "path": "/tmp/mcp/note.txt"}, &r)
	if r.Content != "héllo\nfrom mcp\n" || r.Encoding != "utf-8" {
		t.Fatalf("read back: %+v", r)
	}
	var files struct{ Entries []struct{ Path, Type string } }
	mcpCall(t, s, "sandbox_list_files", map[string]any{"name": name, "path": "/tmp/mcp"}, &files)
	if len(files.Entries) != 1 || files.Entries[0].Path != "/tmp/mcp/note.txt" || files.Entries[0].Type != "file" {
		t.Fatalf("list_files: %+v", files)
	}
	if msg := mcpCall(t, s, "sandbox_read_file", map[string]any{"name": name, "path": "/tmp/none"}, nil); !strings.Contains(msg, "no such file") {
		t.Fatalf("read a missing file: %q", msg)
	}
}

// checkDenied pins denied.test to a loopback address the sandbox's policy
// does not open (paddock policy set, as a user would), has the guest ask
// for it, and finds the refusal through the policy tool and the network
// log resource. Nothing is reached: the policy refuses the name.
func checkDenied(t *testing.T, e *env, s *mcp.ClientSession, name string) {
	pol := filepath.Join(t.TempDir(), "policy.yaml")
	os.WriteFile(pol, []byte("preset: deny-all\nadd_hosts:\n  denied.test: 127.0.0.3\n"), 0o644)
	e.ok("policy", "set", name, pol)
	var p struct {
		Preset string
		Deny   []string
		Denied []struct{ Host, Rule string } `json:"recent_denials"`
	}
	mcpCall(t, s, "sandbox_policy", map[string]any{"name": name, "action": "deny", "rules": []string{"denied.test"}}, &p)
	if p.Preset != "deny-all" || !slices.Contains(p.Deny, "denied.test") {
		t.Fatalf("policy after deny: %+v", p)
	}
	var x mcpExec
	mcpCall(t, s, "sandbox_exec", map[string]any{"name": name, "command": "nslookup denied.test", "timeout_s": 30}, &x)
	if x.ExitCode == 0 || strings.Contains(x.Stdout, "127.0.0.3") {
		t.Fatalf("denied.test resolved: %+v", x)
	}
	waitFor(t, "the denial in sandbox_policy", 10*time.Second, func() bool {
		mcpCall(t, s, "sandbox_policy", map[string]any{"name": name}, &p)
		return slices.ContainsFunc(p.Denied, func(d struct{ Host, Rule string }) bool {
			return d.Host == "denied.test" && strings.Contains(d.Rule, "denied.test")
		})
	})
	res, err := s.ReadResource(context.Background(), &mcp.ReadResourceParams{URI: "paddock://sandbox/" + name + "/logs/net"})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, line := range strings.Split(res.Contents[0].Text, "\n") {
		var rec struct{ Name, Verdict string }
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Name == "denied.test" && rec.Verdict == "deny" {
			found = true
		}
	}
	if !found {
		t.Fatalf("no denial of denied.test in the net log resource:\n%s", tail(res.Contents[0].Text, 2000))
	}
	res, err = s.ReadResource(context.Background(), &mcp.ReadResourceParams{URI: "paddock://sandbox/" + name + "/logs/exec"})
	if err != nil || !strings.Contains(res.Contents[0].Text, "echo hi") {
		t.Fatalf("exec log resource: %v %+v", err, res)
	}
	if _, err := s.ReadResource(context.Background(), &mcp.ReadResourceParams{URI: "paddock://sandbox/no-such/logs/net"}); err == nil {
		t.Fatal("a missing sandbox's log resource was served")
	}
}

// connectStdio starts paddock mcp with args for e and connects the SDK's
// client to it, as an agent would; it ends with the test.
func connectStdio(t *testing.T, e *env, args ...string) *mcp.ClientSession {
	cmd := exec.Command(e.bin, append([]string{"mcp"}, args...)...)
	cmd.Env = append(os.Environ(), "PADDOCK_HOME="+e.home)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	client := mcp.NewClient(&mcp.Implementation{Name: "paddock-test", Version: "1"}, nil)
	s, err := client.Connect(context.Background(), &mcp.CommandTransport{Command: cmd}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		s.Close()
		if t.Failed() {
			t.Logf("paddock mcp stderr:\n%s", tail(stderr.String(), 3000))
		}
	})
	return s
}

// paddock mcp over stdio, driven by the SDK's client as an agent would.
func TestMCPStdio(t *testing.T) {
	e := newEnv(t, "tiny")
	s := connectStdio(t, e)
	exerciseMCP(t, e, s)

	// Checkpoint a sandbox and fork it: the fork has the file.
	var a, f mcpSandbox
	mcpCall(t, s, "sandbox_create", map[string]any{"name": "orig", "template": "tiny", "memory": "512M", "cpus": 1}, &a)
	var w struct{ Path string }
	mcpCall(t, s, "sandbox_write_file", map[string]any{"name": "orig", "path": "/tmp/state", "content": "kept"}, &w)
	var ck struct{ Checkpoint string }
	mcpCall(t, s, "sandbox_checkpoint", map[string]any{"name": "orig"}, &ck)
	mcpCall(t, s, "sandbox_fork", map[string]any{"checkpoint": ck.Checkpoint, "name": "copy"}, &f)
	var r struct{ Content string }
	mcpCall(t, s, "sandbox_read_file", map[string]any{"name": "copy", "path": "/tmp/state"}, &r)
	if f.Name != "copy" || r.Content != "kept" {
		t.Fatalf("fork %+v read %q", f, r.Content)
	}
	if msg := mcpCall(t, s, "sandbox_create", map[string]any{"template": "tiny", "workspace": e.ws}, nil); !strings.Contains(msg, "--allow-workspace-root") {
		t.Fatalf("a workspace without a root: %q", msg)
	}

	// With --allow-workspace-root, a folder under it is shared; one
	// outside it is refused.
	os.WriteFile(filepath.Join(e.ws, "hello.txt"), []byte("from the host\n"), 0o644)
	rooted := connectStdio(t, e, "--allow-workspace-root", filepath.Dir(e.ws))
	if msg := mcpCall(t, rooted, "sandbox_create", map[string]any{"template": "tiny", "workspace": "/usr/share"}, nil); !strings.Contains(msg, "not a folder under") {
		t.Fatalf("a workspace outside the root: %q", msg)
	}
	var ws mcpSandbox
	mcpCall(t, rooted, "sandbox_create", map[string]any{"template": "tiny", "memory": "512M", "cpus": 1, "workspace": e.ws}, &ws)
	var x mcpExec
	mcpCall(t, rooted, "sandbox_exec", map[string]any{"name": ws.Name, "command": "cat hello.txt"}, &x)
	if x.Stdout != "from the host\n" {
		t.Fatalf("the workspace in the guest: %+v", x)
	}
}

// withHeader adds a header to every request, as an MCP client configured
// with one does.
type withHeader struct{ name, value string }

func (h withHeader) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set(h.name, h.value)
	return http.DefaultTransport.RoundTrip(r)
}

// connectHTTP connects to url with key as a bearer token, or as X-API-Key.
func connectHTTP(t *testing.T, url, key string, xAPIKey bool) (*mcp.ClientSession, error) {
	h := withHeader{"Authorization", "Bearer " + key}
	if xAPIKey {
		h = withHeader{"X-API-Key", key}
	}
	client := mcp.NewClient(&mcp.Implementation{Name: "paddock-test", Version: "1"}, nil)
	return client.Connect(context.Background(), &mcp.StreamableClientTransport{
		Endpoint: url, HTTPClient: &http.Client{Transport: h}, MaxRetries: -1,
	}, nil)
}

// /mcp of paddock serve: the same tools, per key (as a bearer token or
// X-API-Key) and under its cap of sandboxes, 401 without one.
func TestMCPHTTP(t *testing.T) {
	e := newEnv(t, "tiny")
	keyA := strings.TrimSpace(e.ok("apikey", "create", "agent-a"))
	keyB := strings.TrimSpace(e.ok("apikey", "create", "agent-b"))
	base, _ := e.serve(t, "--max-sandboxes", "1")
	init := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"curl","version":"1"}}}`
	for _, key := range []string{"", "pk_wrong"} {
		req, _ := http.NewRequest("POST", base+"/mcp", strings.NewReader(init))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 401 {
			t.Fatalf("/mcp with key %q: %d, want 401", key, resp.StatusCode)
		}
	}
	if _, err := connectHTTP(t, base+"/mcp", "pk_wrong", false); err == nil {
		t.Fatal("the SDK's client connected with a wrong key")
	}

	a, err := connectHTTP(t, base+"/mcp", keyA, false)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := connectHTTP(t, base+"/mcp", keyB, true)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	exerciseMCP(t, e, a)

	// A key's sandbox is its own: listed with its owner, invisible to
	// another key.
	var sb mcpSandbox
	mcpCall(t, a, "sandbox_create", map[string]any{"template": "tiny", "memory": "512M", "cpus": 1}, &sb)
	var info struct{ Owner string }
	json.Unmarshal([]byte(e.ok("inspect", sb.Name)), &info)
	if info.Owner != "agent-a" {
		t.Fatalf("owner %q, want agent-a", info.Owner)
	}
	if msg := mcpCall(t, a, "sandbox_create", map[string]any{"template": "tiny"}, nil); !strings.Contains(msg, "its cap") {
		t.Fatalf("a second sandbox past --max-sandboxes 1: %q", msg)
	}
	var list struct{ Sandboxes []mcpSandbox }
	mcpCall(t, b, "sandbox_list", nil, &list)
	if len(list.Sandboxes) != 0 {
		t.Fatalf("key b sees %+v", list)
	}
	for tool, args := range map[string]map[string]any{
		"sandbox_exec":   {"name": sb.Name, "command": "true"},
		"sandbox_remove": {"name": sb.Name},
		"sandbox_policy": {"name": sb.Name, "action": "allow", "rules": []string{"example.com"}},
	} {
		if msg := mcpCall(t, b, tool, args, nil); !strings.Contains(msg, fmt.Sprintf("no sandbox %q", sb.Name)) {
			t.Fatalf("key b %s on a's sandbox: %q", tool, msg)
		}
	}
	var x mcpExec
	mcpCall(t, a, "sandbox_exec", map[string]any{"name": sb.Name, "command": "echo still"}, &x)
	if x.Stdout != "still\n" {
		t.Fatalf("a's sandbox after b's attempts: %+v", x)
	}
}
