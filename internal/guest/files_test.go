package guest

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runFiles(t *testing.T, args ...string) (int, []FileEntry, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := RunFiles(args, &out, &errb)
	var entries []FileEntry
	dec := json.NewDecoder(&out)
	for dec.More() {
		var e FileEntry
		if err := dec.Decode(&e); err != nil {
			t.Fatal(err)
		}
		entries = append(entries, e)
	}
	return code, entries, errb.String()
}

func TestFileTool(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "a", "b", "c"), 0o755)
	os.WriteFile(filepath.Join(dir, "a", "f.txt"), []byte("hello"), 0o640)
	os.Symlink("f.txt", filepath.Join(dir, "a", "link"))

	code, e, _ := runFiles(t, "stat", filepath.Join(dir, "a", "f.txt"))
	if code != 0 || len(e) != 1 || e[0].Type != "file" || e[0].Size != 5 || e[0].Permissions != "-rw-r-----" || e[0].Name != "f.txt" {
		t.Fatalf("stat: %d %+v", code, e)
	}
	if code, e, _ = runFiles(t, "stat", filepath.Join(dir, "a", "link")); code != 0 || e[0].Type != "symlink" || e[0].SymlinkTarget != "f.txt" {
		t.Fatalf("stat of a symlink: %d %+v", code, e)
	}
	names := func(es []FileEntry) string {
		var n []string
		for _, x := range es {
			rel, _ := filepath.Rel(dir, x.Path)
			n = append(n, rel)
		}
		return strings.Join(n, " ")
	}
	if code, e, _ = runFiles(t, "list", filepath.Join(dir, "a"), "1"); code != 0 || names(e) != "a/b a/f.txt a/link" {
		t.Fatalf("list depth 1: %d %q", code, names(e))
	}
	if code, e, _ = runFiles(t, "list", filepath.Join(dir, "a"), "2"); code != 0 || names(e) != "a/b a/b/c a/f.txt a/link" {
		t.Fatalf("list depth 2: %d %q", code, names(e))
	}
	if code, _, _ = runFiles(t, "mkdir", filepath.Join(dir, "new", "deep")); code != 0 {
		t.Fatalf("mkdir: %d", code)
	}
	if code, _, _ = runFiles(t, "mkdir", filepath.Join(dir, "new", "deep")); code != FilesExists {
		t.Fatalf("mkdir of an existing folder: %d", code)
	}
	if code, e, _ = runFiles(t, "move", filepath.Join(dir, "a", "f.txt"), filepath.Join(dir, "g.txt")); code != 0 || e[0].Name != "g.txt" {
		t.Fatalf("move: %d %+v", code, e)
	}
	if code, _, _ = runFiles(t, "remove", filepath.Join(dir, "a")); code != 0 {
		t.Fatalf("remove: %d", code)
	}
	for _, args := range [][]string{{"stat", filepath.Join(dir, "a")}, {"remove", filepath.Join(dir, "a")}, {"list", filepath.Join(dir, "nope"), "1"}} {
		if code, _, msg := runFiles(t, args...); code != FilesNotFound || msg == "" {
			t.Errorf("%v: %d %q", args, code, msg)
		}
	}
	if code, _, _ = runFiles(t, "frob", "x"); code != FilesUsage {
		t.Errorf("unknown operation: %d", code)
	}
}
