package sandbox

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/paddock-dev/paddock/internal/store"
)

// addSandbox records a stopped sandbox with cfg in m's home.
func addSandbox(t *testing.T, m *Manager, cfg store.SandboxConfig) {
	t.Helper()
	l := m.Home.Sandbox(cfg.Name)
	if err := os.MkdirAll(l.Dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := store.WriteJSON(l.Config(), cfg); err != nil {
		t.Fatal(err)
	}
}

// folders makes base/rel for each rel and returns base.
func folders(t *testing.T, rels ...string) string {
	t.Helper()
	base := t.TempDir()
	for _, r := range rels {
		if err := os.MkdirAll(filepath.Join(base, r), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return base
}

// A workspace inside another sandbox's workspace, or holding it, is
// refused; the same folder is not.
func TestNestedWorkspaceRefused(t *testing.T) {
	m := testManager(t)
	base := folders(t, "mono/svc")
	addSandbox(t, m, store.SandboxConfig{Name: "outer", Workspace: filepath.Join(base, "mono")})
	for _, c := range []struct{ ws, want string }{
		{filepath.Join(base, "mono", "svc"), `inside sandbox "outer"'s workspace`},
		{base, `holds sandbox "outer"'s workspace`},
		{filepath.Join(base, "mono"), ""},
	} {
		_, err := m.validate(CreateOptions{Workspace: c.ws})
		if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("workspace %s: %v, want %q", c.ws, err, c.want)
		}
	}
}

// Another sandbox's read-write folder (mount add :rw) counts as its
// workspace does: a workspace or folder inside it or holding it is
// refused, at create and at mount add; the same folder is not. Its
// read-only folders, which its guest cannot change on the host, do not.
func TestNestedReadWriteMountRefused(t *testing.T) {
	m := testManager(t)
	base := folders(t, "rw/svc", "ro/svc", "own")
	addSandbox(t, m, store.SandboxConfig{Name: "outer", Workspace: filepath.Join(base, "own"), Mounts: []store.Mount{
		{Host: filepath.Join(base, "rw"), Guest: "/rw"},
		{Host: filepath.Join(base, "ro"), Guest: "/ro", ReadOnly: true},
	}})
	for _, c := range []struct{ dir, want string }{
		{filepath.Join(base, "rw", "svc"), `inside sandbox "outer"'s read-write folder`},
		{base, `holds sandbox "outer"'s`},
		{filepath.Join(base, "rw"), ""},
		{filepath.Join(base, "ro", "svc"), ""},
		{filepath.Join(base, "ro"), ""},
	} {
		check := func(what string, err error) {
			t.Helper()
			if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
				t.Errorf("%s %s: %v, want %q", what, c.dir, err, c.want)
			}
		}
		_, err := m.validate(CreateOptions{Workspace: c.dir})
		check("workspace", err)
		addSandbox(t, m, store.SandboxConfig{Name: "adder", Workspace: folders(t)})
		_, err = m.AddMount(context.Background(), "adder", store.Mount{Host: c.dir, Guest: "/added", ReadOnly: true})
		check("mount add", err)
		os.RemoveAll(m.Home.Sandbox("adder").Dir)
	}
}
