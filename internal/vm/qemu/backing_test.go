package qemu

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
)

// qemuImg runs qemu-img, failing the test with a hint when it is missing.
func qemuImg(t *testing.T, args ...string) {
	t.Helper()
	if _, err := exec.LookPath("qemu-img"); err != nil {
		t.Fatal("qemu-img not found: install qemu-utils (make deps)")
	}
	if out, err := exec.Command("qemu-img", args...).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img %v: %v: %s", args, err, out)
	}
}

func TestBackingChain(t *testing.T) {
	dir := t.TempDir()
	tpl := filepath.Join(dir, "tpl")
	os.Mkdir(tpl, 0o700)
	root := filepath.Join(tpl, "root.ext4")
	if err := os.WriteFile(root, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	os.Truncate(root, 64<<20)
	// base names the template by an absolute path, disk names base
	// relatively, as a clone's pair does.
	qemuImg(t, "create", "-q", "-f", "qcow2", "-F", "raw", "-b", root, filepath.Join(dir, "base.qcow2"))
	qemuImg(t, "create", "-q", "-f", "qcow2", "-u", "-F", "qcow2", "-b", "base.qcow2", filepath.Join(dir, "disk.qcow2"), "64M")
	got, err := BackingChain(filepath.Join(dir, "disk.qcow2"))
	if err != nil {
		t.Fatal(err)
	}
	want := []Image{{Path: filepath.Join(dir, "base.qcow2"), Format: "qcow2"}, {Path: root, Format: "raw"}}
	if !slices.Equal(got, want) {
		t.Fatalf("chain = %+v, want %+v", got, want)
	}
	// An image without a backing file has an empty chain.
	qemuImg(t, "create", "-q", "-f", "qcow2", filepath.Join(dir, "alone.qcow2"), "1M")
	if got, err := BackingChain(filepath.Join(dir, "alone.qcow2")); err != nil || len(got) != 0 {
		t.Fatalf("alone: %v, %v", got, err)
	}
	// Not a qcow2 image: an error, not a guess.
	if _, err := BackingChain(root); err == nil {
		t.Fatal("a raw image read as qcow2")
	}
}
