package supervisor

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func TestRotatingFileCapsSize(t *testing.T) {
	path := filepath.Join(t.TempDir(), "console.log")
	r, err := openRotating(path, 100)
	if err != nil {
		t.Fatal(err)
	}
	line := bytes.Repeat([]byte("x"), 30)
	for i := 0; i < 10; i++ {
		if _, err := r.Write(line); err != nil {
			t.Fatal(err)
		}
	}
	r.Close()
	cur, _ := os.ReadFile(path)
	old, _ := os.ReadFile(path + ".1")
	if len(cur) > 100 || len(old) > 100 {
		t.Fatalf("log not capped: current %d bytes, rotated %d bytes", len(cur), len(old))
	}
	if len(old) != 90 || len(cur) != 30 {
		t.Fatalf("current %d, rotated %d bytes; want 30 and 90", len(cur), len(old))
	}
}
