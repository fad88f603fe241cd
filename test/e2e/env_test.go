// Package e2e drives the paddock binary as a user types it, against real
// QEMU microVMs booted from the tiny and debian templates. make test builds
// the binaries and templates first; run alone, set PADDOCK_BIN.
package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/paddock-dev/paddock/internal/store"
)

// env is one test's paddock: the binary, a private PADDOCK_HOME for
// sandboxes (sharing the built templates and caches), and a workspace.
type env struct {
	t    testing.TB
	bin  string
	home string
	ws   string
}

func paddockBin(t testing.TB) string {
	bin := os.Getenv("PADDOCK_BIN")
	if bin == "" {
		bin, _ = filepath.Abs("../../bin/paddock")
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("paddock binary not found at %s: run \"make build\" (or make test), or set PADDOCK_BIN", bin)
	}
	return bin
}

// templatesHome is where make test built the templates:
// PADDOCK_TEMPLATES_HOME, else PADDOCK_HOME, else the default home.
func templatesHome(t testing.TB) string {
	if h := os.Getenv("PADDOCK_TEMPLATES_HOME"); h != "" {
		return h
	}
	h, err := store.DefaultHome()
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

// templatesTarget is the make target that builds template name for the
// tests: make test's own, or make test-agents' for the agent presets only
// it tests.
func templatesTarget(name string) string {
	if name == "codex" || name == "gemini" {
		return "make test-agents"
	}
	return "make templates"
}

func newEnv(t testing.TB, templates ...string) *env {
	t.Helper()
	return newEnvWith(t, false, templates...)
}

// newEnvPrivateStates is newEnv with a cache whose saved VM states are the
// test's own (for tests that break them); the rest is shared.
func newEnvPrivateStates(t testing.TB, templates ...string) *env {
	t.Helper()
	return newEnvWith(t, true, templates...)
}

// newEnvPrivateTemplates is newEnvPrivateStates with the test's own copy
// (hard links) of the templates, for tests that rebuild them.
func newEnvPrivateTemplates(t testing.TB, templates ...string) *env {
	t.Helper()
	e := newEnvWith(t, true, templates...)
	link := filepath.Join(e.home, "templates")
	real, err := os.Readlink(link)
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(link)
	if out, err := exec.Command("cp", "-al", real, link).CombinedOutput(); err != nil {
		t.Fatalf("copy templates: %v: %s", err, out)
	}
	return e
}

func newEnvWith(t testing.TB, privateStates bool, templates ...string) *env {
	t.Helper()
	bin := paddockBin(t)
	th := templatesHome(t)
	for _, name := range templates {
		if _, err := os.Stat(filepath.Join(th, "templates", name)); err != nil {
			t.Fatalf("template %q is not built in %s: run \"%s\" (or sudo bin/paddock template build %s)", name, th, templatesTarget(name), name)
		}
	}
	// A short path: unix socket paths are limited to 107 bytes.
	home, err := os.MkdirTemp("", "pdt")
	if err != nil {
		t.Fatal(err)
	}
	shared := []string{"templates", "cache"}
	if privateStates {
		shared = []string{"templates"}
		os.Mkdir(filepath.Join(home, "cache"), 0o755)
		entries, _ := os.ReadDir(filepath.Join(th, "cache"))
		for _, en := range entries {
			if en.Name() != "states" {
				os.Symlink(filepath.Join(th, "cache", en.Name()), filepath.Join(home, "cache", en.Name()))
			}
		}
	}
	for _, d := range shared {
		if err := os.Symlink(filepath.Join(th, d), filepath.Join(home, d)); err != nil {
			t.Fatal(err)
		}
	}
	// The workspace is outside PADDOCK_HOME, which may not hold one.
	ws, err := os.MkdirTemp("", "pdw")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(ws, 0o755)
	// A project folder belongs to a user, whose uid the guest's agent
	// takes. Running as root, model that with uid 1000.
	if os.Geteuid() == 0 {
		os.Chown(ws, 1000, 1000)
	}
	e := &env{t: t, bin: bin, home: home, ws: ws}
	t.Cleanup(func() {
		// Remove every sandbox this test made, then the home.
		out, _, _ := e.run("ls", "--json")
		var list []struct{ Name string }
		json.Unmarshal([]byte(out), &list)
		if t.Failed() {
			for _, s := range list {
				for _, f := range []string{"console.log", "supervisor.log"} {
					b, _ := os.ReadFile(filepath.Join(home, "sandboxes", s.Name, f))
					t.Logf("%s of %s:\n%s", f, s.Name, tail(string(b), 3000))
				}
			}
		}
		for _, s := range list {
			e.run("rm", "-f", s.Name)
		}
		os.RemoveAll(home)
		os.RemoveAll(ws)
	})
	return e
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// with returns a copy of e that reports to t (for subtests).
func (e *env) with(t *testing.T) *env {
	c := *e
	c.t = t
	return &c
}

// run runs paddock with args and returns stdout, stderr and exit code.
func (e *env) run(args ...string) (string, string, int) {
	return e.runIn("", args...)
}

func (e *env) runIn(stdin string, args ...string) (string, string, int) {
	e.t.Helper()
	cmd := exec.Command(e.bin, args...)
	cmd.Env = append(os.Environ(), "PADDOCK_HOME="+e.home)
	cmd.Dir = e.ws
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			e.t.Fatalf("run paddock %v: %v", args, err)
		}
		code = ee.ExitCode()
	}
	return out.String(), errb.String(), code
}

// ok runs paddock and fails the test unless it exits 0.
func (e *env) ok(args ...string) string {
	e.t.Helper()
	start := time.Now()
	out, errs, code := e.run(args...)
	if code != 0 {
		e.t.Fatalf("paddock %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errs)
	}
	e.t.Logf("paddock %s (%s)", strings.Join(args, " "), time.Since(start).Round(time.Millisecond))
	return out
}

// create makes a tiny sandbox on the env's workspace.
func (e *env) create(name string, extra ...string) {
	e.t.Helper()
	args := append([]string{"create", "--name", name, "--template", "tiny", "--memory", "512M", "--cpus", "1", "--workspace", e.ws}, extra...)
	out := e.ok(args...)
	if strings.TrimSpace(out) != name {
		e.t.Fatalf("create printed %q, want %q", out, name)
	}
}

type inspectInfo struct {
	Name          string `json:"name"`
	State         string `json:"state"`
	Reason        string `json:"reason"`
	SupervisorPid int    `json:"supervisor_pid"`
	QEMUPid       int    `json:"qemu_pid"`
	Accel         string `json:"accel"`
	CPUs          int    `json:"cpus"`
	MemoryBytes   int64  `json:"memory_bytes"`
	DiskBytes     int64  `json:"disk_bytes"`
	Dir           string `json:"dir"`
	Boot          string `json:"boot"`
}

func (e *env) inspect(name string) inspectInfo {
	e.t.Helper()
	var info inspectInfo
	if err := json.Unmarshal([]byte(e.ok("inspect", name)), &info); err != nil {
		e.t.Fatal(err)
	}
	return info
}

func processAlive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(b, ')')
	return i > 0 && i+2 < len(b) && b[i+2] != 'Z'
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
