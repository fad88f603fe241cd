package rootfs

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestInstallPrefix: a staging prefix is copied in with permission bits
// only, symlinks as symlinks, existing files replaced; no write follows a
// symlink, and FIFOs are refused.
func TestInstallPrefix(t *testing.T) {
	defer syscall.Umask(syscall.Umask(0o022))
	root := t.TempDir()
	w := func(rel string, data string, mode os.FileMode) {
		t.Helper()
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
	w("stage/lib/node_modules/tool/cli.js", "#!/usr/bin/env node\n", 0o755|os.ModeSetuid|os.ModeSetgid)
	w("stage/lib/node_modules/tool/package.json", "{}", 0o644)
	if err := os.MkdirAll(filepath.Join(root, "stage/bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../lib/node_modules/tool/cli.js", filepath.Join(root, "stage/bin/tool")); err != nil {
		t.Fatal(err)
	}
	w("usr/local/bin/tool", "old", 0o755)
	if err := os.MkdirAll(filepath.Join(root, "usr/local/lib"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := installPrefix(root, "stage", "usr/local"); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Lstat(filepath.Join(root, "usr/local/lib/node_modules/tool/cli.js"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode() != 0o755 {
		t.Errorf("cli.js mode %v, want -rwxr-xr-x (set-id bits dropped)", fi.Mode())
	}
	if link, err := os.Readlink(filepath.Join(root, "usr/local/bin/tool")); err != nil || link != "../lib/node_modules/tool/cli.js" {
		t.Errorf("bin/tool: %q, %v", link, err)
	}

	// A symlink on the way to a destination is not followed.
	outside := t.TempDir()
	root2 := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root2, "usr/local"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(root2, "usr/local/lib")); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root2, "stage/lib/x"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root2, "stage/lib/x/f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := installPrefix(root2, "stage", "usr/local"); err == nil || !strings.Contains(err.Error(), "/usr/local/lib: a file or symlink is there already") {
		t.Errorf("a folder over a symlink in the destination: %v", err)
	}
	if entries, _ := os.ReadDir(outside); len(entries) > 0 {
		t.Errorf("wrote outside the tree: %v", entries)
	}

	// A FIFO is refused.
	root3 := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root3, "stage"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root3, "usr/local"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(root3, "stage/pipe"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := installPrefix(root3, "stage", "usr/local"); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Errorf("FIFO: %v", err)
	}
}

// TestRemoveOwnedBy: what the build uid left in the tree goes, the rest
// stays.
func TestRemoveOwnedBy(t *testing.T) {
	needRoot(t)
	root := t.TempDir()
	for _, d := range []string{"tmp/left/deep", "keep", "work"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"tmp/left/deep/f", "tmp/file", "keep/f", "work/f"} {
		if err := os.WriteFile(filepath.Join(root, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []string{"tmp/left", "tmp/left/deep", "tmp/left/deep/f", "tmp/file", "work/f"} {
		if err := os.Lchown(filepath.Join(root, p), buildUID, buildUID); err != nil {
			t.Fatal(err)
		}
	}
	n, err := removeOwnedBy(root, buildUID, filepath.Join(root, "work"))
	if err != nil || n != 2 {
		t.Errorf("removed %d, %v; want 2 (tmp/left, tmp/file)", n, err)
	}
	for p, want := range map[string]bool{"tmp/left": false, "tmp/file": false, "keep/f": true, "work/f": true, "tmp": true} {
		_, err := os.Lstat(filepath.Join(root, p))
		if (err == nil) != want {
			t.Errorf("%s exists: %v, want %v", p, err == nil, want)
		}
	}
}
