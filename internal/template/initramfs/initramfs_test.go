package initramfs

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cavaliergopher/cpio"
)

func TestWriteInitramfs(t *testing.T) {
	mods := t.TempDir()
	files := map[string]string{
		"kernel/lib/crc16.ko":    "crc16 module",
		"kernel/fs/ext4/ext4.ko": "ext4 module",
	}
	for p, data := range files {
		os.MkdirAll(filepath.Join(mods, filepath.Dir(p)), 0o755)
		os.WriteFile(filepath.Join(mods, p), []byte(data), 0o644)
	}
	order := []string{"kernel/lib/crc16.ko", "kernel/fs/ext4/ext4.ko"}
	var buf bytes.Buffer
	if err := writeInitramfs(&buf, []byte("AGENT"), mods, "6.1.0-9-amd64", order); err != nil {
		t.Fatal(err)
	}

	got := map[string]string{}
	modes := map[string]cpio.FileMode{}
	var names []string
	r := cpio.NewReader(bytes.NewReader(buf.Bytes()))
	for {
		h, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(r)
		got[h.Name] = string(data)
		modes[h.Name] = h.Mode
		names = append(names, h.Name)
	}
	if got["init"] != "AGENT" || modes["init"] != cpio.TypeReg|0o755 {
		t.Errorf("init: %q mode %o", got["init"], modes["init"])
	}
	if got["etc/paddock/modules"] != "kernel/lib/crc16.ko\nkernel/fs/ext4/ext4.ko\n" {
		t.Errorf("module list: %q", got["etc/paddock/modules"])
	}
	for p, data := range files {
		if got["lib/modules/6.1.0-9-amd64/"+p] != data {
			t.Errorf("%s: %q", p, got["lib/modules/6.1.0-9-amd64/"+p])
		}
	}
	// Every directory comes before what it holds.
	seen := map[string]bool{".": true}
	for _, n := range names {
		if !seen[filepath.Dir(n)] {
			t.Errorf("%s comes before its directory", n)
		}
		seen[n] = true
		if !modes[n].IsDir() && !modes[n].IsRegular() {
			t.Errorf("%s: mode %o", n, modes[n])
		}
	}

	// The system's cpio reads it too.
	if _, err := exec.LookPath("cpio"); err != nil {
		t.Fatal("cpio not found: run \"apt-get install cpio\"")
	}
	cmd := exec.Command("cpio", "-t", "--quiet")
	cmd.Stdin = bytes.NewReader(buf.Bytes())
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "lib/modules/6.1.0-9-amd64/kernel/fs/ext4/ext4.ko\n") ||
		!strings.HasPrefix(string(out), "dev\n") {
		t.Errorf("cpio -t:\n%s", out)
	}
}

func TestPruneInitramfs(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	write := func(name, content string, age time.Duration) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		os.Chtimes(p, now.Add(-age), now.Add(-age))
		return p
	}
	old := write("old.cpio", "x", 30*24*time.Hour)
	used := write("used.cpio", "x", 30*24*time.Hour)
	fresh := write("fresh.cpio", "x", time.Hour)
	killed := write(".initramfs-123", "x", 30*24*time.Hour)
	oldMemo := write("a.memo", old, 0)
	freshMemo := write("b.memo", fresh, 0)
	if err := markUsed(used); err != nil {
		t.Fatal(err)
	}
	if err := markUsed(filepath.Join(dir, "missing.cpio")); err == nil {
		t.Error("markUsed of a missing archive succeeded")
	}
	pruneInitramfs(dir, now.Add(-initramfsKeep))
	for p, want := range map[string]bool{old: false, used: true, fresh: true, killed: false, oldMemo: false, freshMemo: true} {
		if _, err := os.Stat(p); (err == nil) != want {
			t.Errorf("%s: exists %v, want %v", filepath.Base(p), err == nil, want)
		}
	}
}
