package e2bapi

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWorkspaceOf(t *testing.T) {
	root := t.TempDir()
	inside := filepath.Join(root, "proj")
	outside := t.TempDir()
	os.Mkdir(inside, 0o700)
	os.Symlink(outside, filepath.Join(root, "escape"))
	s := &Server{}
	if ws, err := s.workspaceOf(map[string]string{"app": "x"}); ws != "" || err != nil {
		t.Fatalf("no workspace asked: %q %v", ws, err)
	}
	if _, err := s.workspaceOf(map[string]string{workspaceKey: inside}); err == nil || !strings.Contains(err.Error(), "--allow-workspace-root") {
		t.Fatalf("a server without a root: %v", err)
	}
	s.WorkspaceRoot = root
	if ws, err := s.workspaceOf(map[string]string{workspaceKey: inside}); err != nil || ws != inside {
		t.Fatalf("a folder under the root: %q %v", ws, err)
	}
	for _, bad := range []string{root, outside, filepath.Join(root, "escape"), filepath.Join(root, "none"), "proj", root + "/../" + filepath.Base(outside)} {
		if ws, err := s.workspaceOf(map[string]string{workspaceKey: bad}); err == nil {
			t.Errorf("%s: accepted as %q", bad, ws)
		}
	}
}
