package wsync

import (
	"errors"
	"fmt"
	"path"
	"strconv"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"

	agentv1 "github.com/paddock-dev/paddock/api/agent/v1"
)

// change is what the watcher saw happen to a path.
type change struct {
	path    string
	writing bool // modified by a writer that has not closed it yet
	closed  bool // a writer closed it
}

// watcher reports the changes below a tree's folder: inotify on every
// folder, new ones added as they appear. Changes pile up until taken.
type watcher struct {
	t   *Tree
	ifd int // inotify
	efd int // eventfd: wakes the loop to drain or stop

	mu       sync.Mutex
	pending  []change
	overflow bool           // events were lost: rescan everything
	dirs     map[int]string // watch descriptor → folder
	full     error          // a folder could not be watched (the watch limit): rescan
	stopping bool
	drains   []chan struct{}

	notify chan struct{} // has a value when pending grew
	done   chan struct{}
}

const watchMask = unix.IN_CREATE | unix.IN_MOVED_TO | unix.IN_MOVED_FROM | unix.IN_DELETE | unix.IN_MODIFY |
	unix.IN_CLOSE_WRITE | unix.IN_ATTRIB | unix.IN_ONLYDIR | unix.IN_EXCL_UNLINK

// watch starts watching t's folder and everything below it.
func watch(t *Tree) (*watcher, error) {
	ifd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("inotify: %w", err)
	}
	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(ifd)
		return nil, err
	}
	w := &watcher{t: t, ifd: ifd, efd: efd, dirs: map[int]string{}, notify: make(chan struct{}, 1), done: make(chan struct{})}
	if err := w.addTree(""); err != nil {
		w.closeFDs()
		return nil, err
	}
	go w.loop()
	return w, nil
}

func (w *watcher) closeFDs() { unix.Close(w.ifd); unix.Close(w.efd) }

// add watches folder p.
func (w *watcher) add(p string) error {
	return w.t.do(func() error {
		fd, err := w.t.open(p, unix.O_PATH|unix.O_DIRECTORY)
		if err != nil {
			if notThere(err) {
				return nil
			}
			return err
		}
		defer unix.Close(fd)
		wd, err := unix.InotifyAddWatch(w.ifd, "/proc/self/fd/"+strconv.Itoa(fd), watchMask)
		if err != nil {
			if notThere(err) {
				return nil
			}
			return err
		}
		w.mu.Lock()
		w.dirs[wd] = p
		w.mu.Unlock()
		return nil
	})
}

// addTree watches p and every folder below it.
func (w *watcher) addTree(p string) error {
	if err := w.add(p); err != nil {
		if errors.Is(err, unix.ENOSPC) {
			w.mu.Lock()
			w.full = fmt.Errorf("the inotify watch limit (fs.inotify.max_user_watches) is reached")
			w.mu.Unlock()
			return nil
		}
		return fmt.Errorf("watch %s: %w", p, err)
	}
	entries, err := w.t.WalkDir(p)
	if err != nil {
		return nil // gone meanwhile: its events say so
	}
	for _, e := range entries {
		if e.Type == agentv1.SyncType_SYNC_DIR {
			if err := w.add(e.Path); err != nil && errors.Is(err, unix.ENOSPC) {
				w.mu.Lock()
				w.full = fmt.Errorf("the inotify watch limit (fs.inotify.max_user_watches) is reached")
				w.mu.Unlock()
				return nil
			}
		}
	}
	return nil
}

// forget drops the watches of p and the folders below it (moved away).
func (w *watcher) forget(p string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for wd, dir := range w.dirs {
		if under(dir, p) {
			unix.InotifyRmWatch(w.ifd, uint32(wd))
			delete(w.dirs, wd)
		}
	}
}

// take answers the changes seen since the last take, and whether events
// were lost (or folders are unwatched) so that a rescan is due.
func (w *watcher) take() ([]change, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	c, rescan := w.pending, w.overflow
	w.pending, w.overflow = nil, false
	return c, rescan
}

// unwatched says why some folders are not watched, or nil.
func (w *watcher) unwatched() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.full
}

// drain returns once every event queued before the call is in pending.
func (w *watcher) drain() {
	ch := make(chan struct{})
	w.mu.Lock()
	if w.stopping {
		w.mu.Unlock()
		return
	}
	w.drains = append(w.drains, ch)
	w.mu.Unlock()
	w.wake()
	select {
	case <-ch:
	case <-w.done:
	}
}

func (w *watcher) wake() {
	one := [8]byte{1}
	unix.Write(w.efd, one[:])
}

// close stops the watcher.
func (w *watcher) close() {
	w.mu.Lock()
	w.stopping = true
	w.mu.Unlock()
	w.wake()
	<-w.done
}

func (w *watcher) loop() {
	defer close(w.done)
	defer w.closeFDs()
	buf := make([]byte, 64<<10)
	fds := []unix.PollFd{{Fd: int32(w.ifd), Events: unix.POLLIN}, {Fd: int32(w.efd), Events: unix.POLLIN}}
	for {
		if _, err := unix.Poll(fds, -1); err != nil && err != unix.EINTR {
			return
		}
		var eb [8]byte
		unix.Read(w.efd, eb[:])
		w.readEvents(buf)
		w.mu.Lock()
		stop, drains := w.stopping, w.drains
		w.drains = nil
		w.mu.Unlock()
		for _, ch := range drains {
			close(ch)
		}
		if stop {
			return
		}
	}
}

// readEvents reads every event queued now.
func (w *watcher) readEvents(buf []byte) {
	for {
		n, err := unix.Read(w.ifd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil || n <= 0 {
			return
		}
		var got []change
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
			raw := buf[off+unix.SizeofInotifyEvent : off+unix.SizeofInotifyEvent+int(ev.Len)]
			off += unix.SizeofInotifyEvent + int(ev.Len)
			got = append(got, w.event(ev, cstring(raw))...)
		}
		w.mu.Lock()
		w.pending = append(w.pending, got...)
		w.mu.Unlock()
		select {
		case w.notify <- struct{}{}:
		default:
		}
	}
}

// event turns one inotify event into changes.
func (w *watcher) event(ev *unix.InotifyEvent, name string) []change {
	if ev.Mask&unix.IN_Q_OVERFLOW != 0 {
		w.mu.Lock()
		w.overflow = true
		w.mu.Unlock()
		return nil
	}
	w.mu.Lock()
	dir, known := w.dirs[int(ev.Wd)]
	if ev.Mask&unix.IN_IGNORED != 0 {
		delete(w.dirs, int(ev.Wd))
	}
	w.mu.Unlock()
	if !known || name == "" {
		return nil
	}
	p := path.Join(dir, name)
	if isTemp(p) {
		return nil
	}
	isDir := ev.Mask&unix.IN_ISDIR != 0
	switch {
	case isDir && ev.Mask&(unix.IN_CREATE|unix.IN_MOVED_TO) != 0:
		// A new folder: watch it, and report what is in it already
		// (made before the watch, or moved in whole).
		w.addTree(p)
		out := []change{{path: p}}
		if entries, err := w.t.WalkDir(p); err == nil {
			for _, e := range entries {
				out = append(out, change{path: e.Path})
			}
		}
		return out
	case isDir && ev.Mask&unix.IN_MOVED_FROM != 0:
		w.forget(p)
	}
	return []change{{path: p, writing: ev.Mask&unix.IN_MODIFY != 0, closed: ev.Mask&unix.IN_CLOSE_WRITE != 0}}
}

func cstring(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}
