package mcpserver

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/paddock-dev/paddock/internal/netpolicy"
	"github.com/paddock-dev/paddock/internal/sandbox"
	"github.com/paddock-dev/paddock/internal/store"
)

func TestCapped(t *testing.T) {
	c := &capped{max: 10}
	c.Write([]byte("hello "))
	c.Write([]byte("world, again"))
	if c.String() != "hello worl" || c.dropped != 8 {
		t.Fatalf("kept %q, dropped %d", c.String(), c.dropped)
	}
	if n := c.note("stdout"); !strings.Contains(n, "stdout cut at 0 KiB (8 more bytes dropped)") {
		t.Fatalf("note %q", n)
	}
	// A cap inside a character keeps whole characters.
	u := &capped{max: 3}
	u.Write([]byte("aaé!"))
	if u.String() != "aa" || !utf8.ValidString(u.String()) {
		t.Fatalf("cut inside é: %q", u.String())
	}
	whole := &capped{max: 64 << 10}
	whole.Write([]byte("fits"))
	if whole.String() != "fits" || whole.note("stderr") != "" {
		t.Fatalf("under the cap: %q %q", whole.String(), whole.note("stderr"))
	}
}

func TestCheckExec(t *testing.T) {
	for _, tc := range []struct {
		in      execIn
		timeout time.Duration
		errs    []string
	}{
		{execIn{Name: "a", Command: "ls"}, defaultExecTimeout, nil},
		{execIn{Name: "a", Command: "ls", TimeoutS: 5}, 5 * time.Second, nil},
		{execIn{}, 0, []string{"name is required", "command is required"}},
		{execIn{Name: "a", Command: "  "}, 0, []string{"command is required"}},
		{execIn{Name: "a", Command: "ls", TimeoutS: 3601}, 0, []string{"timeout_s 3601: give 1 to 3600"}},
		{execIn{Name: "a", Command: "ls", TimeoutS: -1}, 0, []string{"timeout_s -1"}},
	} {
		timeout, err := checkExec(tc.in)
		checkErrs(t, tc.in, err, tc.errs)
		if err == nil && timeout != tc.timeout {
			t.Errorf("%+v: timeout %s, want %s", tc.in, timeout, tc.timeout)
		}
	}
}

// checkErrs wants err to hold every one of want (or to be nil for none).
func checkErrs(t *testing.T, in any, err error, want []string) {
	t.Helper()
	if len(want) == 0 {
		if err != nil {
			t.Errorf("%+v: %v", in, err)
		}
		return
	}
	if err == nil {
		t.Errorf("%+v: no error, want %q", in, want)
		return
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("%+v: error %q lacks %q", in, err, w)
		}
	}
}

func TestCreateOptions(t *testing.T) {
	root := t.TempDir()
	tl := &tools{cfg: Config{}, m: &sandbox.Manager{}}
	o, err := tl.createOptions(createIn{Template: "tiny", Policy: "deny-all", AllowHosts: []string{"pypi.org", "*.github.com:*"}, TTLSeconds: 60}, "key-a")
	if err != nil {
		t.Fatal(err)
	}
	if o.Owner != "key-a" || !o.NoWorkspace || o.TTL != time.Minute || o.Policy.Preset != netpolicy.DenyAll || len(o.Policy.Allow) != 2 {
		t.Fatalf("options %+v, policy %+v", o, o.Policy)
	}
	if o, _ := tl.createOptions(createIn{}, ""); o.Policy != nil {
		t.Fatalf("no policy asked: %+v", o.Policy)
	}
	if o, _ := tl.createOptions(createIn{AllowHosts: []string{"pypi.org"}}, ""); o.Policy.Preset != netpolicy.DefaultPreset {
		t.Fatalf("allow without a preset: %+v", o.Policy)
	}
	_, err = tl.createOptions(createIn{Name: "Bad_Name", Policy: "open", AllowHosts: []string{"10.0.0.0/8", "a b"}, TTLSeconds: -5, CPUs: -1, Workspace: root}, "")
	checkErrs(t, "every problem", err, []string{"name: invalid name", "policy \"open\"", "allow_hosts \"10.0.0.0/8\": an address range", "allow_hosts \"a b\"", "ttl_s -5", "cpus -1", "--allow-workspace-root"})

	tl.cfg.WorkspaceRoot = root
	proj := root + "/proj"
	if err := mkdir(proj); err != nil {
		t.Fatal(err)
	}
	if o, err := tl.createOptions(createIn{Workspace: proj}, ""); err != nil || o.Workspace != proj || o.NoWorkspace {
		t.Fatalf("a folder under the root: %+v %v", o, err)
	}
	_, err = tl.createOptions(createIn{Workspace: t.TempDir()}, "")
	checkErrs(t, "outside the root", err, []string{"not a folder under"})
}

func TestWriteData(t *testing.T) {
	data, mode, err := writeData(writeIn{Name: "a", Path: "x", Content: base64.StdEncoding.EncodeToString([]byte{0, 1, 2}), Encoding: "base64", Mode: "0755"})
	if err != nil || string(data) != "\x00\x01\x02" || mode != 0o755 {
		t.Fatalf("base64: %q %o %v", data, mode, err)
	}
	_, _, err = writeData(writeIn{Content: "!!", Encoding: "base64", Mode: "999"})
	checkErrs(t, "bad write", err, []string{"name is required", "path is required", "not valid base64", "mode \"999\""})
	_, _, err = writeData(writeIn{Name: "a", Path: "x", Encoding: "latin1"})
	checkErrs(t, "encoding", err, []string{"encoding \"latin1\": use utf-8 or base64"})
	_, _, err = writeData(writeIn{Name: "a", Path: "x", Content: strings.Repeat("a", writeCap+1)})
	checkErrs(t, "too big", err, []string{"write it in parts"})
}

func TestCheckPolicy(t *testing.T) {
	for _, tc := range []struct {
		in   policyIn
		errs []string
	}{
		{policyIn{Name: "a"}, nil},
		{policyIn{Name: "a", Action: "allow", Rules: []string{"pypi.org", "10.1.0.0/16:5432"}}, nil},
		{policyIn{Action: "allow"}, []string{"name is required", "needs rules"}},
		{policyIn{Name: "a", Action: "deny", Rules: []string{"a b"}}, []string{"rule \"a b\""}},
		{policyIn{Name: "a", Rules: []string{"x.org"}}, []string{"not show"}},
		{policyIn{Name: "a", Action: "set"}, []string{"use show, allow or deny"}},
	} {
		checkErrs(t, tc.in, checkPolicy(tc.in), tc.errs)
	}
}

func TestDenials(t *testing.T) {
	var recs []netpolicy.Record
	for i := range 30 {
		recs = append(recs, netpolicy.Record{Name: "h" + string(rune('a'+i%26)), Verdict: netpolicy.Deny, Rule: "preset deny-all"})
	}
	recs = append(recs, netpolicy.Record{Dest: "192.0.2.1:443", Verdict: netpolicy.Deny}, netpolicy.Record{Name: "ok.org", Verdict: netpolicy.Allow})
	d := denials(recs, 20)
	if len(d) != 20 || d[19].Host != "192.0.2.1:443" || d[18].Host != "hd" {
		t.Fatalf("denials %+v", d)
	}
}

func TestParseLogURI(t *testing.T) {
	for uri, want := range map[string]string{
		"paddock://sandbox/web/logs/net":        "web net",
		"paddock://sandbox/web/logs/exec":       "web exec",
		"paddock://sandbox/web/logs/console":    "web console",
		"paddock://sandbox/web/logs/supervisor": "",
		"paddock://sandbox/web/logs/net/x":      "",
		"paddock://sandbox//logs/net":           "",
		"file:///etc/passwd":                    "",
	} {
		name, kind, ok := parseLogURI(uri)
		got := ""
		if ok {
			got = name + " " + string(kind)
		}
		if got != want {
			t.Errorf("%s: %q, want %q", uri, got, want)
		}
	}
}

// connect serves cfg to an in-memory client.
func connect(t *testing.T, cfg Config) *mcp.ClientSession {
	t.Helper()
	ct, st := mcp.NewInMemoryTransports()
	ctx := context.Background()
	if _, err := New(cfg).Connect(ctx, st, nil); err != nil {
		t.Fatal(err)
	}
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "test"}, nil).Connect(ctx, ct, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cs.Close() })
	return cs
}

// toolError calls a tool that must fail and returns its message.
func toolError(t *testing.T, cs *mcp.ClientSession, tool string, args map[string]any) string {
	t.Helper()
	res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: tool, Arguments: args})
	if err != nil {
		t.Fatal(err)
	}
	if !res.IsError {
		t.Fatalf("%s %v succeeded", tool, args)
	}
	return res.Content[0].(*mcp.TextContent).Text
}

// Without VMs: the tools' schemas and their errors, as a client sees them.
func TestToolsWithoutSandboxes(t *testing.T) {
	m := &sandbox.Manager{Home: store.Home(t.TempDir())}
	cs := connect(t, Config{Manager: m})
	tools, err := cs.ListTools(context.Background(), nil)
	if err != nil || len(tools.Tools) != 10 {
		t.Fatalf("%d tools, %v", len(tools.Tools), err)
	}
	for _, tl := range tools.Tools {
		if tl.Name != "sandbox_list" && !strings.Contains(string(mustJSON(tl.InputSchema)), "description") {
			t.Errorf("%s: its schema describes no argument: %s", tl.Name, mustJSON(tl.InputSchema))
		}
		if tl.Name == "sandbox_policy" && !strings.Contains(string(mustJSON(tl.InputSchema)), `"enum":["show","allow","deny"]`) {
			t.Errorf("sandbox_policy: action lists no values: %s", mustJSON(tl.InputSchema))
		}
	}
	res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "sandbox_list"})
	if err != nil || res.IsError || !strings.Contains(string(mustJSON(res.StructuredContent)), `"sandboxes":[]`) {
		t.Fatalf("list: %v %+v", err, res)
	}
	for tool, args := range map[string]map[string]any{
		"sandbox_exec":       {"name": "web", "command": "ls"},
		"sandbox_read_file":  {"name": "web", "path": "/x"},
		"sandbox_remove":     {"name": "web"},
		"sandbox_checkpoint": {"name": "web"},
		"sandbox_policy":     {"name": "web"},
	} {
		if msg := toolError(t, cs, tool, args); !strings.Contains(msg, `no sandbox "web": sandbox_list shows`) {
			t.Errorf("%s: %q", tool, msg)
		}
	}
	if msg := toolError(t, cs, "sandbox_exec", map[string]any{"name": "web"}); !strings.Contains(msg, "command") {
		t.Errorf("exec without a command: %q", msg)
	}
	if msg := toolError(t, cs, "sandbox_fork", map[string]any{"checkpoint": "nope"}); !strings.Contains(msg, "no checkpoint \"nope\": make one with sandbox_checkpoint") {
		t.Errorf("fork of a missing checkpoint: %q", msg)
	}
	if msg := toolError(t, cs, "sandbox_fork", map[string]any{}); !strings.Contains(msg, "either checkpoint") {
		t.Errorf("fork of nothing: %q", msg)
	}
	if _, err := cs.ReadResource(context.Background(), &mcp.ReadResourceParams{URI: "paddock://sandbox/web/logs/net"}); err == nil {
		t.Error("a missing sandbox's log was served")
	}
}

// A server for API keys refuses a request that names none.
func TestPerKeyNeedsAKey(t *testing.T) {
	m := &sandbox.Manager{Home: store.Home(t.TempDir())}
	cs := connect(t, Config{Manager: m, PerKey: true})
	for _, tool := range []string{"sandbox_list", "sandbox_create"} {
		if msg := toolError(t, cs, tool, map[string]any{}); !strings.Contains(msg, "no API key") {
			t.Errorf("%s: %q", tool, msg)
		}
	}
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

func mkdir(p string) error { return os.Mkdir(p, 0o700) }
