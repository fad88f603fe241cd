package guest

import (
	"bufio"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestWatchDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "w")
	os.Mkdir(dir, 0o755)
	r, w := io.Pipe()
	done := make(chan int)
	go func() {
		done <- watchDir(dir, true, w, func(err error) int { t.Error(err); return 1 })
		w.Close()
	}()
	events := make(chan WatchEvent, 100)
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			var e WatchEvent
			json.Unmarshal(sc.Bytes(), &e)
			events <- e
		}
		close(events)
	}()
	next := func() WatchEvent {
		t.Helper()
		select {
		case e := <-events:
			return e
		case <-time.After(5 * time.Second):
			t.Fatal("no event within 5 s")
		}
		return WatchEvent{}
	}
	want := func(typ, name string) {
		t.Helper()
		for {
			e := next()
			if e.Type == typ && e.Name == name {
				return
			}
			if e.Type == "start" {
				t.Fatalf("a second start event")
			}
		}
	}
	if e := next(); e.Type != "start" {
		t.Fatalf("first event %+v, want start", e)
	}
	os.WriteFile(filepath.Join(dir, "a.txt"), []byte("x"), 0o644)
	want("create", "a.txt")
	want("write", "a.txt")
	os.Rename(filepath.Join(dir, "a.txt"), filepath.Join(dir, "b.txt"))
	want("rename", "a.txt")
	want("create", "b.txt")
	os.Chmod(filepath.Join(dir, "b.txt"), 0o600)
	want("chmod", "b.txt")
	os.Remove(filepath.Join(dir, "b.txt"))
	want("remove", "b.txt")
	os.Mkdir(filepath.Join(dir, "sub"), 0o755)
	want("create", "sub")
	time.Sleep(100 * time.Millisecond) // the new folder's watch is added after its event
	os.WriteFile(filepath.Join(dir, "sub", "deep.txt"), nil, 0o644)
	want("create", filepath.Join("sub", "deep.txt"))

	os.RemoveAll(dir)
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit %d when the watched folder went", code)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the watch did not end when its folder went")
	}
	if code := watchDir(filepath.Join(dir, "none"), false, io.Discard, func(error) int { return FilesNotFound }); code != FilesNotFound {
		t.Fatalf("a missing folder: exit %d", code)
	}
}
