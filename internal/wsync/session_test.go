package wsync

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	agentv1 "github.com/paddock-dev/paddock/api/agent/v1"
)

// pipeConn is one end of an in-memory Sync stream. Like ttrpc's, a
// receiver buffers 64 messages and a sender that finds them full fails
// after a second: a flow-control bug shows.
type pipeConn struct {
	in, out chan *agentv1.SyncMessage
	gate    *sync.Mutex // held: this end's sends wait
	closed  chan struct{}
	flushes atomic.Int32 // FLUSH messages this end sent
}

func pipe() (*pipeConn, *pipeConn) {
	a, b := make(chan *agentv1.SyncMessage, 64), make(chan *agentv1.SyncMessage, 64)
	done := make(chan struct{})
	return &pipeConn{in: a, out: b, gate: &sync.Mutex{}, closed: done}, &pipeConn{in: b, out: a, gate: &sync.Mutex{}, closed: done}
}

func (c *pipeConn) Send(m *agentv1.SyncMessage) error {
	c.gate.Lock()
	defer c.gate.Unlock()
	m = proto.Clone(m).(*agentv1.SyncMessage) // as ttrpc marshals at once
	if m.Kind == agentv1.SyncKind_SYNC_FLUSH {
		c.flushes.Add(1)
	}
	select {
	case c.out <- m:
		return nil
	case <-c.closed:
		return errors.New("closed")
	case <-time.After(time.Second):
		return errors.New("stream full")
	}
}

func (c *pipeConn) Recv() (*agentv1.SyncMessage, error) {
	select {
	case m := <-c.in:
		return m, nil
	case <-c.closed:
		return nil, errors.New("closed")
	}
}

type pair struct {
	host, guest string // the folders
	hs          *Session
	hostConn    *pipeConn
	guestConn   *pipeConn
	guestDone   chan error
	cancel      context.CancelFunc
	once        sync.Once
}

// start syncs host folder h with guest folder g, as a sandbox's
// supervisor and agent would, and waits for the first sync.
func start(t *testing.T, h, g, state string) *pair {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	hc, gc := pipe()
	p := &pair{host: h, guest: g, hostConn: hc, guestConn: gc, guestDone: make(chan error, 1), cancel: cancel}
	log := slog.New(slog.NewTextHandler(testWriter{t}, nil))
	go func() { p.guestDone <- Guest(ctx, gc, log.With("side", "guest")) }()
	tree, err := OpenTree(h)
	if err != nil {
		t.Fatal(err)
	}
	// As in the supervisor: every host call on one owner's thread.
	owner, err := NewOwner(uint32(os.Getuid()), uint32(os.Getgid()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(owner.Close)
	tree.RunAs(owner.Do)
	p.hs, err = Host(ctx, hc, tree, HostOptions{GuestPath: g, UID: uint32(os.Getuid()), GID: uint32(os.Getgid()), StatePath: state, Log: log.With("side", "host")})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.hs.Ready():
		if err := p.hs.ReadyErr(); err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the first sync did not end")
	}
	t.Cleanup(p.stop)
	return p
}

func (p *pair) stop() {
	p.once.Do(func() {
		p.cancel()
		<-p.hs.Done()
		close(p.hostConn.closed)
		<-p.guestDone
	})
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

// snapshot lists a folder: path → type and content (a symlink's target).
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || p == dir {
			return nil
		}
		r, _ := filepath.Rel(dir, p)
		switch {
		case fi.Mode()&os.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			out[r] = "link:" + target
		case fi.IsDir():
			out[r] = "dir:" + fi.Mode().Perm().String()
		case !fi.Mode().IsRegular():
			// never synced
		default:
			b, _ := os.ReadFile(p)
			out[r] = "file:" + fi.Mode().Perm().String() + ":" + string(b)
		}
		return nil
	})
	return out
}

func keys(m map[string]string) string {
	var k []string
	for p, v := range m {
		if len(v) > 60 {
			v = v[:60] + "..."
		}
		k = append(k, p+"="+v)
	}
	sort.Strings(k)
	return strings.Join(k, "\n")
}

// eventually waits until both folders hold want (nil: until they are
// equal), flushing between looks.
func (p *pair) eventually(t *testing.T, want map[string]string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		h, g := snapshot(t, p.host), snapshot(t, p.guest)
		ok := keys(h) == keys(g)
		if want != nil {
			ok = ok && keys(h) == keys(want)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not in step:\nhost:\n%s\nguest:\n%s\nwant:\n%s", keys(h), keys(g), keys(want))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func write(t *testing.T, name, content string) {
	t.Helper()
	os.MkdirAll(filepath.Dir(name), 0o755)
	if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestFirstSyncAndBothWays(t *testing.T) {
	h, g := t.TempDir(), filepath.Join(t.TempDir(), "copy")
	write(t, filepath.Join(h, "a.txt"), "alpha")
	write(t, filepath.Join(h, "src/deep/b.go"), "package b")
	os.Symlink("../../etc/passwd", filepath.Join(h, "src/link"))
	os.Chmod(filepath.Join(h, "a.txt"), 0o755)
	p := start(t, h, g, filepath.Join(t.TempDir(), "state"))
	p.eventually(t, map[string]string{
		"a.txt": "file:-rwxr-xr-x:alpha", "src": "dir:-rwxr-xr-x", "src/deep": "dir:-rwxr-xr-x",
		"src/deep/b.go": "file:-rw-r--r--:package b", "src/link": "link:../../etc/passwd",
	})
	// The guest changes, adds and removes; then the host.
	write(t, filepath.Join(g, "a.txt"), "alpha 2")
	write(t, filepath.Join(g, "new/c.txt"), "from the guest")
	os.Remove(filepath.Join(g, "src/link"))
	p.eventually(t, map[string]string{
		"a.txt": "file:-rwxr-xr-x:alpha 2", "src": "dir:-rwxr-xr-x", "src/deep": "dir:-rwxr-xr-x",
		"src/deep/b.go": "file:-rw-r--r--:package b", "new": "dir:-rwxr-xr-x", "new/c.txt": "file:-rw-r--r--:from the guest",
	})
	if err := os.Rename(filepath.Join(h, "src"), filepath.Join(h, "lib")); err != nil {
		t.Fatal(err)
	}
	os.RemoveAll(filepath.Join(h, "new"))
	os.Mkdir(filepath.Join(h, "empty"), 0o700)
	p.eventually(t, map[string]string{
		"a.txt": "file:-rwxr-xr-x:alpha 2", "lib": "dir:-rwxr-xr-x", "lib/deep": "dir:-rwxr-xr-x",
		"lib/deep/b.go": "file:-rw-r--r--:package b", "empty": "dir:-rwx------",
	})
	if err := p.hs.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// A file changed on both sides keeps the host's version; the guest's is
// beside it on both sides.
func TestConflictKeepsBoth(t *testing.T) {
	h, g := t.TempDir(), filepath.Join(t.TempDir(), "copy")
	write(t, filepath.Join(h, "f"), "v1")
	p := start(t, h, g, filepath.Join(t.TempDir(), "state"))
	p.eventually(t, nil)
	p.guestConn.gate.Lock() // the guest's change waits in its sender
	write(t, filepath.Join(g, "f"), "guest")
	time.Sleep(300 * time.Millisecond)
	write(t, filepath.Join(h, "f"), "host")
	time.Sleep(300 * time.Millisecond)
	p.guestConn.gate.Unlock()
	p.eventually(t, map[string]string{"f": "file:-rw-r--r--:host", "f.paddock-conflict": "file:-rw-r--r--:guest"})
}

// A big file arrives whole, and a file that changes while it is sent is
// sent again.
func TestBigFile(t *testing.T) {
	h, g := t.TempDir(), filepath.Join(t.TempDir(), "copy")
	p := start(t, h, g, filepath.Join(t.TempDir(), "state"))
	big := make([]byte, 20<<20+123)
	rand.Read(big)
	if err := os.WriteFile(filepath.Join(g, "big"), big, 0o600); err != nil {
		t.Fatal(err)
	}
	p.eventually(t, nil)
	got, _ := os.ReadFile(filepath.Join(h, "big"))
	if !bytes.Equal(got, big) {
		t.Fatalf("big file differs on the host: %d bytes", len(got))
	}
	ents, _ := os.ReadDir(h)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), tempPrefix) {
			t.Errorf("temporary file left: %s", e.Name())
		}
	}
}

// A session that starts again (the sandbox restarted) finds what changed
// while it was away, on either side, from its saved state.
func TestRestartReconciles(t *testing.T) {
	h, g := t.TempDir(), filepath.Join(t.TempDir(), "copy")
	state := filepath.Join(t.TempDir(), "state")
	write(t, filepath.Join(h, "keep"), "same")
	write(t, filepath.Join(h, "hostedit"), "v1")
	write(t, filepath.Join(h, "guestedit"), "v1")
	write(t, filepath.Join(h, "hostrm"), "v1")
	write(t, filepath.Join(h, "guestrm"), "v1")
	p := start(t, h, g, state)
	p.eventually(t, nil)
	p.stop()
	write(t, filepath.Join(h, "hostedit"), "host v2")
	write(t, filepath.Join(g, "guestedit"), "guest v2")
	os.Remove(filepath.Join(h, "hostrm"))
	os.Remove(filepath.Join(g, "guestrm"))
	p = start(t, h, g, state)
	p.eventually(t, map[string]string{
		"keep": "file:-rw-r--r--:same", "hostedit": "file:-rw-r--r--:host v2", "guestedit": "file:-rw-r--r--:guest v2",
	})
}

// Special files and set-id bits never reach the other side; a path that
// leaves the folder is refused.
func TestHostStaysClean(t *testing.T) {
	h, g := t.TempDir(), filepath.Join(t.TempDir(), "copy")
	p := start(t, h, g, filepath.Join(t.TempDir(), "state"))
	write(t, filepath.Join(g, "suid"), "x")
	os.Chmod(filepath.Join(g, "suid"), 0o4755)
	if err := mkfifo(filepath.Join(g, "fifo")); err != nil {
		t.Fatal(err)
	}
	p.eventually(t, map[string]string{"suid": "file:-rwxr-xr-x:x"}) // set-id bits are not compared: see below
	st, err := os.Lstat(filepath.Join(h, "suid"))
	if err != nil || st.Mode()&(os.ModeSetuid|os.ModeSetgid) != 0 || st.Mode().Perm() != 0o755 {
		t.Fatalf("suid on the host: %v %v", st.Mode(), err)
	}
	if _, err := os.Lstat(filepath.Join(h, "fifo")); !os.IsNotExist(err) {
		t.Fatalf("the FIFO reached the host: %v", err)
	}
	for _, bad := range []string{"../x", "/etc/passwd", "a/../../x", "", "a//b"} {
		if checkPath(bad) == nil {
			t.Errorf("path %q accepted", bad)
		}
	}
}

// Many files made in the guest at once reach the host while the host's
// own watcher reports them: the host's sender and receiver share the
// owner's thread and must not wait for each other.
func TestManyGuestFiles(t *testing.T) {
	h, g := t.TempDir(), filepath.Join(t.TempDir(), "copy")
	p := start(t, h, g, filepath.Join(t.TempDir(), "state"))
	want := map[string]string{}
	for d := range 20 {
		dir := fmt.Sprintf("d%d", d)
		want[dir] = "dir:-rwxr-xr-x"
		for f := range 100 {
			name := fmt.Sprintf("%s/f%d", dir, f)
			write(t, filepath.Join(g, name), name)
			want[name] = "file:-rw-r--r--:" + name
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.hs.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	p.eventually(t, want)
}

// FlushOut brings the host's changes into the guest before it returns,
// and asks the guest nothing when no change waits (an exec's start).
func TestFlushOut(t *testing.T) {
	h, g := t.TempDir(), filepath.Join(t.TempDir(), "copy")
	write(t, filepath.Join(h, "a.txt"), "alpha")
	p := start(t, h, g, filepath.Join(t.TempDir(), "state"))
	ctx := context.Background()
	before := p.hostConn.flushes.Load()
	if err := p.hs.FlushOut(ctx); err != nil {
		t.Fatal(err)
	}
	if n := p.hostConn.flushes.Load(); n != before {
		t.Fatalf("an idle FlushOut sent %d FLUSH messages", n-before)
	}
	for i := 0; i < 20; i++ {
		content := fmt.Sprintf("host change %d", i)
		write(t, filepath.Join(h, "a.txt"), content)
		if err := p.hs.FlushOut(ctx); err != nil {
			t.Fatal(err)
		}
		if b, _ := os.ReadFile(filepath.Join(g, "a.txt")); string(b) != content {
			t.Fatalf("after FlushOut the guest has %q, want %q", b, content)
		}
	}
	if p.hostConn.flushes.Load() == before {
		t.Fatal("FlushOut after changes asked the guest nothing")
	}
	before = p.hostConn.flushes.Load()
	if err := p.hs.FlushOut(ctx); err != nil {
		t.Fatal(err)
	}
	if n := p.hostConn.flushes.Load(); n != before {
		t.Fatalf("FlushOut once everything was confirmed sent %d FLUSH messages", n-before)
	}
}
