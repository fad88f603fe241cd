package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// poolInfo is what the warm-pool tests read of paddock ls --json.
type poolInfo struct {
	Name     string            `json:"name"`
	State    string            `json:"state"`
	Template string            `json:"template"`
	Pool     string            `json:"pool"`
	Owner    string            `json:"owner"`
	Metadata map[string]string `json:"metadata"`
	Deadline *time.Time        `json:"deadline"`
}

func (e *env) list() []poolInfo {
	e.t.Helper()
	var out []poolInfo
	if err := json.Unmarshal([]byte(e.ok("ls", "--json")), &out); err != nil {
		e.t.Fatal(err)
	}
	return out
}

// idlePool returns the idle pool members of template that are ready to
// claim: running, and warmed up (serve offers a member once its warm-up
// exec, which the exec audit log records, has ended).
func (e *env) idlePool(template string) []string {
	var names []string
	for _, s := range e.list() {
		st, err := os.Stat(filepath.Join(e.home, "sandboxes", s.Name, "exec.jsonl"))
		if s.Pool == template && s.State == "running" && err == nil && st.Size() > 0 {
			names = append(names, s.Name)
		}
	}
	return names
}

// serve --warm: an API create claims the idle clone, which takes the
// request's owner, env, metadata, deadline and policy; a replacement boots;
// ls explains pool members; restarts of serve adopt or remove them; bad
// --warm values are refused at start.
func TestAPIPool(t *testing.T) {
	e := newEnv(t, "tiny")
	poolBadWarm(t, e)
	key := strings.TrimSpace(e.ok("apikey", "create", "pool-key"))
	base, stop := e.serve(t, "--warm", "tiny=1")
	pooled := poolIdle(t, e, base, key)
	id := poolClaim(t, e, base, key, pooled)
	replacement := poolReplacement(t, e, base, key, id)
	poolConcurrentCreates(t, base, key, replacement)

	// serve stops: the idle member stays; the next serve adopts it.
	var idle []string
	waitFor(t, "the pool refilled", 90*time.Second, func() bool { idle = e.idlePool("tiny"); return len(idle) == 1 })
	kept := idle[0]
	stop()
	if now := e.idlePool("tiny"); !slices.Equal(now, []string{kept}) {
		t.Fatalf("after serve stopped, idle pool members are %v; want %s", now, kept)
	}
	base, stop = e.serve(t, "--warm", "tiny=1")
	time.Sleep(2 * time.Second) // a boot would have started by now
	if now := e.idlePool("tiny"); !slices.Equal(now, []string{kept}) {
		t.Errorf("after a restart, idle pool members are %v; want the adopted %s", now, kept)
	}
	if code, body := call(t, "POST", base+"/sandboxes", key, []byte(`{"templateID":"tiny","timeout":60}`)); code != 201 || body["sandboxID"] != kept {
		t.Errorf("create after a restart: %d %v; want the adopted %s", code, body, kept)
	}

	// A serve without --warm removes the idle members it finds.
	waitFor(t, "the pool refilled", 90*time.Second, func() bool { return len(e.idlePool("tiny")) == 1 })
	stop()
	e.serve(t)
	waitFor(t, "the idle member removed", 30*time.Second, func() bool { return len(e.idlePool("tiny")) == 0 })
	for _, s := range e.list() {
		if s.Pool != "" {
			t.Errorf("a pool member is left: %+v", s)
		}
	}
}

// poolBadWarm: serve refuses each malformed --warm with a message.
func poolBadWarm(t *testing.T, e *env) {
	for _, bad := range []struct{ warm, want string }{
		{"tiny=0", "from 1 to"},
		{"tiny=1000", "from 1 to"},
		{"tiny", "TEMPLATE=N"},
		{"no-such-template=1", "--warm no-such-template"},
		{"tiny=1,tiny=2", "named twice"},
	} {
		_, errs, code := e.run("serve", "--listen", "127.0.0.1:0", "--warm", bad.warm)
		if code == 0 || !strings.Contains(errs, bad.want) {
			t.Errorf("serve --warm %s: exit %d, %q; want an error with %q", bad.warm, code, errs, bad.want)
		}
	}
}

// poolIdle waits for the pool's idle sandbox, which ls explains, whose
// network is closed and which no key sees; it returns its name.
func poolIdle(t *testing.T, e *env, base, key string) string {
	var idle []string
	waitFor(t, "an idle pool sandbox", 90*time.Second, func() bool { idle = e.idlePool("tiny"); return len(idle) == 1 })
	pooled := idle[0]
	if out := e.ok("ls"); !strings.Contains(out, "(warm pool, idle)") || !strings.Contains(out, "paddock serve --warm keeps") {
		t.Errorf("paddock ls does not explain the pool member:\n%s", out)
	}
	if pol := e.ok("policy", "show", pooled); !strings.Contains(pol, "deny-all") {
		t.Errorf("an idle pool sandbox's network is not closed:\n%s", pol)
	}
	if code, body := call(t, "GET", base+"/sandboxes/"+pooled, key, nil); code != 404 {
		t.Errorf("a key sees an idle pool sandbox: %d %v", code, body)
	}

	return pooled
}

// poolClaim: an API create claims the idle sandbox and gives it the
// create's env, metadata, network, owner and deadline; it returns its id.
func poolClaim(t *testing.T, e *env, base, key, pooled string) string {
	code, body := call(t, "POST", base+"/sandboxes", key, []byte(`{"templateID":"base","timeout":120,
		"envVars":{"GREETING":"hello from the pool"},"metadata":{"who":"pool-test"},"allow_internet_access":false}`))
	if code != 201 {
		t.Fatalf("create: %d %v", code, body)
	}
	id := fmt.Sprint(body["sandboxID"])
	if id != pooled {
		t.Fatalf("the create made %s instead of claiming the idle %s", id, pooled)
	}
	if out := e.ok("exec", id, "--", "sh", "-c", `echo "$GREETING"; hostname`); out != "hello from the pool\n"+id+"\n" {
		t.Errorf("env and hostname of the claimed sandbox: %q", out)
	}
	if pol := e.ok("policy", "show", id); !strings.Contains(pol, "deny-all") {
		t.Errorf("allow_internet_access false gave:\n%s", pol)
	}
	if code, body = call(t, "GET", base+"/sandboxes/"+id, key, nil); code != 200 || fmt.Sprint(body["metadata"]) != "map[who:pool-test]" || body["envdAccessToken"] == "" {
		t.Errorf("get the claimed sandbox: %d %v", code, body)
	}
	for _, s := range e.list() {
		if s.Name != id {
			continue
		}
		if s.Pool != "" || s.Owner != "pool-key" || s.Deadline == nil || time.Until(*s.Deadline) > 121*time.Second || time.Until(*s.Deadline) < 60*time.Second {
			t.Errorf("the claimed sandbox: %+v", s)
		}
	}

	return id
}

// poolReplacement: a replacement boots; the API lists only the key's
// sandbox id. It returns the replacement.
func poolReplacement(t *testing.T, e *env, base, key, id string) string {
	var idle []string
	waitFor(t, "a replacement pool sandbox", 90*time.Second, func() bool {
		idle = e.idlePool("tiny")
		return len(idle) == 1 && idle[0] != id
	})
	replacement := idle[0]
	if ids := listIDs(t, base, key); !slices.Equal(ids, []string{id}) {
		t.Errorf("the key lists %v, want only %s", ids, id)
	}

	return replacement
}

// poolConcurrentCreates: two creates at once with one idle clone each get
// their own sandbox, which are then killed.
func poolConcurrentCreates(t *testing.T, base, key, replacement string) {
	var mu sync.Mutex
	var got []string
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, body := call(t, "POST", base+"/sandboxes", key, []byte(`{"templateID":"tiny","timeout":60}`))
			mu.Lock()
			defer mu.Unlock()
			if code != 201 {
				t.Errorf("concurrent create: %d %v", code, body)
				return
			}
			got = append(got, fmt.Sprint(body["sandboxID"]))
		}()
	}
	wg.Wait()
	if len(got) == 2 && (got[0] == got[1] || !slices.Contains(got, replacement)) {
		t.Errorf("two concurrent creates got %v; want two sandboxes, one of them the idle %s", got, replacement)
	}
	for _, g := range got {
		if code, _ := call(t, "DELETE", base+"/sandboxes/"+g, key, nil); code != 204 {
			t.Errorf("kill %s: %d", g, code)
		}
	}
}

// listIDs lists the key's sandbox ids through the API.
func listIDs(t *testing.T, base, key string) []string {
	t.Helper()
	req, _ := http.NewRequest("GET", base+"/v2/sandboxes", nil)
	req.Header.Set("X-API-Key", key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var list []struct {
		SandboxID string `json:"sandboxID"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		t.Fatalf("list: %d %v", resp.StatusCode, err)
	}
	var ids []string
	for _, s := range list {
		ids = append(ids, s.SandboxID)
	}
	slices.Sort(ids)
	return ids
}
