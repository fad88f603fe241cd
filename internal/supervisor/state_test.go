package supervisor

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/paddock-dev/paddock/internal/store"
)

func TestPruneStatesRemovesReplacedAndOrphanedStates(t *testing.T) {
	dir := t.TempDir()
	rootfs := filepath.Join(dir, "root.ext4")
	os.WriteFile(rootfs, nil, 0o644)
	current := stateSpec{Template: "tiny", TemplateHash: "b2", Rootfs: rootfs, Initrd: "i2", Accel: "tcg", CPUs: 2, MemoryMiB: 512, Format: stateFormat}
	mk := func(name string, sp stateSpec) string {
		p := filepath.Join(dir, name)
		os.Mkdir(p, 0o755)
		if err := store.WriteJSON(savedState{Dir: p}.Meta(), sp); err != nil {
			t.Fatal(err)
		}
		return p
	}
	keep := mk("tiny-current", current)
	older := current
	older.TemplateHash = "b1"
	replaced := mk("tiny-older", older)
	other := current
	other.MemoryMiB = 2048
	otherSize := mk("tiny-2g", other)
	gone := current
	gone.Template, gone.Rootfs = "saved-1", filepath.Join(dir, "removed", "root.ext4")
	orphan := mk("saved-1-x", gone)
	stale := filepath.Join(dir, ".make-123")
	os.Mkdir(stale, 0o755)
	old := time.Now().Add(-2 * time.Hour)
	os.Chtimes(stale, old, old)
	fresh := filepath.Join(dir, ".make-456")
	os.Mkdir(fresh, 0o755)

	pruneStates(dir, keep, current, slog.New(slog.DiscardHandler))

	for p, want := range map[string]bool{keep: true, replaced: false, otherSize: true, orphan: false, stale: false, fresh: true} {
		_, err := os.Stat(p)
		if got := err == nil; got != want {
			t.Errorf("%s exists = %v, want %v", filepath.Base(p), got, want)
		}
	}
}

func TestCloneDiskIsAnEmptyOverlayOnBase(t *testing.T) {
	if _, err := exec.LookPath("qemu-img"); err != nil {
		t.Fatal("qemu-img not found: install it with \"apt-get install qemu-utils\" (or run make test-deps)")
	}
	dir := t.TempDir()
	rootfs := filepath.Join(dir, "root.ext4")
	if err := os.WriteFile(rootfs, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(rootfs, 64<<20); err != nil {
		t.Fatal(err)
	}
	st := savedState{Dir: dir}
	if err := makeCloneDisk(context.Background(), st, stateSpec{Rootfs: rootfs}); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("qemu-img", "info", "--output=json", "-U", st.Clone()).Output()
	if err != nil {
		t.Fatal(err)
	}
	var info struct {
		Format      string `json:"format"`
		VirtualSize int64  `json:"virtual-size"`
		Backing     string `json:"backing-filename"`
		BackingFmt  string `json:"backing-filename-format"`
	}
	if err := json.Unmarshal(out, &info); err != nil {
		t.Fatal(err)
	}
	if info.Format != "qcow2" || info.VirtualSize != 64<<20 || info.Backing != store.BaseDiskName || info.BackingFmt != "qcow2" {
		t.Fatalf("clone disk: %+v", info)
	}
}
