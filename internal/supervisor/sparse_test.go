package supervisor

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

func TestCopySparseKeepsDataAndHoles(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	f, _ := os.Create(src)
	f.Truncate(64 << 20)
	f.WriteAt([]byte("start"), 0)
	f.WriteAt([]byte("middle"), 32<<20)
	f.WriteAt([]byte("end"), 64<<20-3)
	f.Close()
	dst := filepath.Join(dir, "dst")
	if err := copySparse(src, dst); err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(src)
	b, _ := os.ReadFile(dst)
	if !bytes.Equal(a, b) {
		t.Fatal("copy differs from source")
	}
	if alloc := allocatedBytes(t, dst); alloc > 4<<20 {
		t.Errorf("copy allocates %d bytes; holes were filled", alloc)
	}
}

func allocatedBytes(t *testing.T, path string) int64 {
	t.Helper()
	var st = new(statT)
	if err := stat(path, st); err != nil {
		t.Fatal(err)
	}
	return st.Blocks * 512
}

type statT = unix.Stat_t

func stat(path string, st *statT) error { return unix.Stat(path, st) }
