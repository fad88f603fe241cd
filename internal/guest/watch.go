package guest

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"unsafe"

	"golang.org/x/sys/unix"
)

// WatchEvent is a line the file tool's watch prints: a change under the
// watched folder (Name relative to it), or, first, "start" once the
// watches are in place.
type WatchEvent struct {
	Type string `json:"type"` // start, create, write, remove, rename, chmod
	Name string `json:"name,omitempty"`
}

// watchMask is what a watched folder reports: fsnotify's and so envd's
// event kinds.
const watchMask = unix.IN_CREATE | unix.IN_MOVED_TO | unix.IN_MODIFY | unix.IN_DELETE | unix.IN_MOVED_FROM |
	unix.IN_ATTRIB | unix.IN_DELETE_SELF | unix.IN_MOVE_SELF | unix.IN_ONLYDIR

// watchDir prints dir's changes, and with recursive its sub-folders' (new
// ones included), as JSON lines until the watched folder goes or out
// fails (the exec's reader went away).
func watchDir(dir string, recursive bool, out io.Writer, fail func(error) int) int {
	if st, err := os.Stat(dir); err != nil {
		return fail(err)
	} else if !st.IsDir() {
		return fail(fmt.Errorf("watch %s: not a folder", dir))
	}
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC)
	if err != nil {
		return fail(fmt.Errorf("watch %s: %w", dir, err))
	}
	defer unix.Close(fd)
	w := &dirWatch{fd: fd, dir: dir, recursive: recursive, rel: map[int]string{}}
	if err := w.addTree(dir); err != nil {
		return fail(err)
	}
	enc := json.NewEncoder(out)
	if enc.Encode(WatchEvent{Type: "start"}) != nil {
		return 0
	}
	buf := make([]byte, 64<<10)
	for {
		n, err := unix.Read(fd, buf)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return fail(fmt.Errorf("watch %s: %w", dir, err))
		}
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
			nameBytes := buf[off+unix.SizeofInotifyEvent : off+unix.SizeofInotifyEvent+int(ev.Len)]
			off += unix.SizeofInotifyEvent + int(ev.Len)
			name := string(nameBytes[:clen(nameBytes)])
			base, known := w.rel[int(ev.Wd)]
			if !known {
				continue
			}
			if ev.Mask&(unix.IN_DELETE_SELF|unix.IN_MOVE_SELF) != 0 && base == "" {
				return 0 // the watched folder itself went
			}
			if ev.Mask&unix.IN_IGNORED != 0 {
				delete(w.rel, int(ev.Wd))
				continue
			}
			if name == "" {
				continue // a sub-folder's own event: its parent reports it
			}
			p := filepath.Join(base, name)
			if recursive && ev.Mask&unix.IN_ISDIR != 0 && ev.Mask&(unix.IN_CREATE|unix.IN_MOVED_TO) != 0 {
				w.addTree(filepath.Join(dir, p))
			}
			if enc.Encode(WatchEvent{Type: watchType(ev.Mask), Name: p}) != nil {
				return 0
			}
		}
	}
}

// dirWatch is the inotify watches of a folder and, when recursive, of
// the folders under it.
type dirWatch struct {
	fd        int
	dir       string
	recursive bool
	rel       map[int]string // watch descriptor -> folder relative to dir
}

func (w *dirWatch) add(p string) error {
	wd, err := unix.InotifyAddWatch(w.fd, p, watchMask)
	if err != nil {
		return fmt.Errorf("watch %s: %w", p, err)
	}
	r, _ := filepath.Rel(w.dir, p)
	if r == "." {
		r = ""
	}
	w.rel[wd] = r
	return nil
}

// addTree watches root and, when recursive, every folder under it that
// can be read.
func (w *dirWatch) addTree(root string) error {
	if !w.recursive {
		return w.add(root)
	}
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == root {
				return err
			}
			return nil // a sub-folder gone or unreadable meanwhile
		}
		if d.IsDir() {
			return w.add(p)
		}
		return nil
	})
}

func watchType(mask uint32) string {
	switch {
	case mask&(unix.IN_CREATE|unix.IN_MOVED_TO) != 0:
		return "create"
	case mask&unix.IN_MODIFY != 0:
		return "write"
	case mask&unix.IN_DELETE != 0:
		return "remove"
	case mask&unix.IN_MOVED_FROM != 0:
		return "rename"
	}
	return "chmod"
}

// clen is the length of the NUL-padded name.
func clen(b []byte) int {
	for i, c := range b {
		if c == 0 {
			return i
		}
	}
	return len(b)
}
