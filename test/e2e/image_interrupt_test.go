package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// An import interrupted (Ctrl-C) while it unpacks the image's layers, or
// while it makes the ext4 image, stops and leaves nothing of the template
// behind: no template, no build folder with its staging tree.
func TestImportInterruptedLeavesNothing(t *testing.T) {
	e := importEnv(t)
	archive := filepath.Join(e.home, "big.tar")
	writeArchive(t, testImage(t, 300<<20), "big:1", archive)
	for _, step := range []string{"unpacking layers", "ext4 image"} {
		t.Run(step, func(t *testing.T) {
			cmd := exec.Command(e.bin, "template", "import", "big", "docker-archive:"+archive)
			cmd.Env = append(os.Environ(), "PADDOCK_HOME="+e.home)
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			cmd.Stderr = w
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			w.Close()
			// The step's line is printed when it starts and ended when it
			// does: interrupt as soon as it starts.
			var progress bytes.Buffer
			buf := make([]byte, 4096)
			for !strings.Contains(progress.String(), step) {
				n, err := r.Read(buf)
				progress.Write(buf[:n])
				if err != nil {
					t.Fatalf("the import ended before %q: %s", step, progress.String())
				}
			}
			start := time.Now()
			cmd.Process.Signal(os.Interrupt)
			for {
				n, err := r.Read(buf)
				progress.Write(buf[:n])
				if err != nil {
					break
				}
			}
			if err := cmd.Wait(); err == nil {
				t.Fatalf("the import finished despite the interrupt (it was too quick to interrupt):\n%s", progress.String())
			}
			t.Logf("stopped %s after the interrupt:\n%s", time.Since(start).Round(time.Millisecond), progress.String())
			e.noTemplate("big")
			entries, _ := os.ReadDir(filepath.Join(e.home, "templates"))
			for _, en := range entries {
				if en.Name() != ".big.lock" {
					t.Errorf("the interrupted import left %s in templates", en.Name())
				}
			}
		})
	}
}
