package wsync

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"sort"

	"golang.org/x/sys/unix"

	agentv1 "github.com/paddock-dev/paddock/api/agent/v1"
)

// Tree is a synced folder, opened once. Every path below it is resolved
// beneath it without following a symlink, so nothing a side puts in the
// folder can lead a call outside it.
type Tree struct {
	root int // an O_PATH descriptor of the folder

	// chown, when set, owns what the tree makes by uid and gid (the guest:
	// the agent runs as root, the workspace's user owns the copy).
	chown    bool
	uid, gid int
	// do runs each call that touches the folder; the host's runs it on a
	// thread whose fsuid is the folder's owner (see Owner).
	do func(func() error) error
}

// OpenTree opens the folder at dir, which must be a folder and not a
// symlink.
func OpenTree(dir string) (*Tree, error) {
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", dir, err)
	}
	return NewTree(fd), nil
}

// NewTree makes a tree of the folder open as fd (an O_PATH descriptor is
// enough), which the tree owns from then on.
func NewTree(fd int) *Tree {
	return &Tree{root: fd, do: func(f func() error) error { return f() }}
}

// ChownTo makes the tree own what it creates by uid and gid.
func (t *Tree) ChownTo(uid, gid int) { t.chown, t.uid, t.gid = true, uid, gid }

// RunAs makes every call of the tree run through do.
func (t *Tree) RunAs(do func(func() error) error) { t.do = do }

// Close closes the folder's descriptor.
func (t *Tree) Close() error { return unix.Close(t.root) }

const resolve = unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS

// open opens p beneath the folder ("." for the folder itself).
func (t *Tree) open(p string, flags int) (int, error) {
	if p == "" {
		p = "."
	}
	for {
		fd, err := unix.Openat2(t.root, p, &unix.OpenHow{Flags: uint64(flags | unix.O_CLOEXEC), Resolve: resolve})
		if err == unix.EINTR || err == unix.EAGAIN {
			continue // EAGAIN: a rename raced the lookup
		}
		return fd, err
	}
}

// parent opens p's folder and answers it with p's last element.
func (t *Tree) parent(p string) (int, string, error) {
	fd, err := t.open(path.Dir(p), unix.O_PATH|unix.O_DIRECTORY)
	return fd, path.Base(p), err
}

// notThere reports whether err says a path (or a folder on its way) is
// not there; a symlink on the way counts, as nothing beyond it is synced.
func notThere(err error) bool {
	return errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.ELOOP) || errors.Is(err, unix.EXDEV)
}

// Stat answers p's entry: absent when p is not there or is a special
// file (device node, FIFO, socket), which are never synced.
func (t *Tree) Stat(p string) (e *Entry, err error) {
	err = t.do(func() error {
		dfd, name, err := t.parent(p)
		if err != nil {
			if notThere(err) {
				e = absent(p)
				return nil
			}
			return err
		}
		defer unix.Close(dfd)
		e, err = t.statAt(dfd, name, p)
		return err
	})
	return e, err
}

func (t *Tree) statAt(dfd int, name, p string) (*Entry, error) {
	var st unix.Stat_t
	if err := unix.Fstatat(dfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		if notThere(err) {
			return absent(p), nil
		}
		return nil, err
	}
	return t.entryOf(dfd, name, p, &st)
}

func (t *Tree) entryOf(dfd int, name, p string, st *unix.Stat_t) (*Entry, error) {
	e := &Entry{Path: p, Perm: st.Mode & 0o777}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		e.Type, e.Size, e.MtimeNs = agentv1.SyncType_SYNC_FILE, st.Size, st.Mtim.Nano()
	case unix.S_IFDIR:
		e.Type = agentv1.SyncType_SYNC_DIR
	case unix.S_IFLNK:
		buf := make([]byte, 4096)
		n, err := unix.Readlinkat(dfd, name, buf)
		if err != nil {
			if notThere(err) {
				return absent(p), nil
			}
			return nil, err
		}
		e.Type, e.Perm, e.Target = agentv1.SyncType_SYNC_SYMLINK, 0, string(buf[:n])
	default:
		return absent(p), nil
	}
	return e, nil
}

// Walk answers every entry below the folder, parents before their
// children. Folders it cannot read are skipped and reported in skipped.
func (t *Tree) Walk() (entries []*Entry, skipped []error, err error) {
	err = t.do(func() error {
		return t.walk("", &entries, &skipped)
	})
	return entries, skipped, err
}

// WalkDir is Walk below p.
func (t *Tree) WalkDir(p string) (entries []*Entry, err error) {
	err = t.do(func() error {
		var skipped []error
		return t.walk(p, &entries, &skipped)
	})
	return entries, err
}

func (t *Tree) walk(dir string, out *[]*Entry, skipped *[]error) error {
	fd, err := t.open(dir, unix.O_RDONLY|unix.O_DIRECTORY)
	if err != nil {
		if notThere(err) {
			return nil
		}
		if dir == "" {
			return err
		}
		*skipped = append(*skipped, fmt.Errorf("%s: %w", dir, err))
		return nil
	}
	f := os.NewFile(uintptr(fd), dir)
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		*skipped = append(*skipped, fmt.Errorf("%s: %w", dir, err))
		return nil
	}
	sort.Strings(names)
	for _, name := range names {
		p := path.Join(dir, name)
		if isTemp(p) {
			continue
		}
		e, err := t.statAt(fd, name, p)
		if err != nil {
			*skipped = append(*skipped, fmt.Errorf("%s: %w", p, err))
			continue
		}
		if isAbsent(e) {
			continue
		}
		*out = append(*out, e)
		if e.Type == agentv1.SyncType_SYNC_DIR {
			if err := t.walk(p, out, skipped); err != nil {
				return err
			}
		}
	}
	return nil
}

// Open opens the file p for reading and answers its entry as opened.
func (t *Tree) Open(p string) (f *os.File, e *Entry, err error) {
	err = t.do(func() error {
		fd, err := t.open(p, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK)
		if err != nil {
			return err
		}
		f = os.NewFile(uintptr(fd), p)
		e, err = fileEntry(f, p)
		if err != nil {
			f.Close()
			f = nil
		}
		return err
	})
	return f, e, err
}

// fileEntry is the entry of the open file f.
func fileEntry(f *os.File, p string) (*Entry, error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return nil, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return absent(p), nil
	}
	return &Entry{Path: p, Type: agentv1.SyncType_SYNC_FILE, Perm: st.Mode & 0o777, Size: st.Size, MtimeNs: st.Mtim.Nano()}, nil
}

// mkdirs makes p's missing folders (0755, or the tree's owner's), as
// mkdir -p does, and answers p's folder opened.
func (t *Tree) mkdirs(p string) (int, error) {
	dir := path.Dir(p)
	fd, err := t.open(dir, unix.O_PATH|unix.O_DIRECTORY)
	if err == nil || dir == "." || !errors.Is(err, unix.ENOENT) {
		return fd, err
	}
	pfd, err := t.mkdirs(dir)
	if err != nil {
		return -1, err
	}
	defer unix.Close(pfd)
	name := path.Base(dir)
	if err := unix.Mkdirat(pfd, name, 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
		return -1, err
	}
	if t.chown {
		unix.Fchownat(pfd, name, t.uid, t.gid, unix.AT_SYMLINK_NOFOLLOW)
	}
	return t.open(dir, unix.O_PATH|unix.O_DIRECTORY)
}

// Incoming is a file being received: written under a temporary name,
// renamed into place by Commit.
type Incoming struct {
	t    *Tree
	e    *Entry
	f    *os.File
	dfd  int
	temp string
	n    int64
}

// Create starts writing file e.
func (t *Tree) Create(e *Entry) (in *Incoming, err error) {
	err = t.do(func() error {
		dfd, err := t.mkdirs(e.Path)
		if err != nil {
			return err
		}
		temp := tempName()
		fd, err := unix.Openat(dfd, temp, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if err != nil {
			unix.Close(dfd)
			return err
		}
		in = &Incoming{t: t, e: e, f: os.NewFile(uintptr(fd), temp), dfd: dfd, temp: temp}
		return nil
	})
	return in, err
}

func tempName() string {
	b := make([]byte, 8)
	rand.Read(b)
	return tempPrefix + hex.EncodeToString(b)
}

// Write appends p to the file.
func (in *Incoming) Write(p []byte) (int, error) {
	if in.n+int64(len(p)) > in.e.Size {
		return 0, fmt.Errorf("%s: more bytes than its size %d", in.e.Path, in.e.Size)
	}
	var n int
	err := in.t.do(func() (err error) {
		n, err = in.f.Write(p)
		return err
	})
	in.n += int64(n)
	return n, err
}

// Commit gives the file its permission bits, owner and time and renames
// it into place, calling before with what is there just before the rename
// (under the caller's lock, the rename and the caller's record of it are
// one step; an error from before leaves things as they are).
func (in *Incoming) Commit(before func(cur *Entry) error) error {
	defer unix.Close(in.dfd)
	return in.t.do(func() error {
		err := func() error {
			if in.n != in.e.Size {
				return fmt.Errorf("%s: %d bytes of %d", in.e.Path, in.n, in.e.Size)
			}
			fd := int(in.f.Fd())
			if err := unix.Fchmod(fd, in.e.Perm&0o777); err != nil {
				return err
			}
			if in.t.chown {
				if err := unix.Fchown(fd, in.t.uid, in.t.gid); err != nil {
					return err
				}
			}
			ts := []unix.Timespec{unix.NsecToTimespec(in.e.MtimeNs), unix.NsecToTimespec(in.e.MtimeNs)}
			if err := unix.UtimesNanoAt(in.dfd, in.temp, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
				return err
			}
			return in.f.Close()
		}()
		if err == nil {
			err = in.t.replace(in.dfd, in.temp, in.e.Path, before)
		}
		if err != nil {
			in.f.Close()
			unix.Unlinkat(in.dfd, in.temp, 0)
		}
		return err
	})
}

// Abort drops the file being written.
func (in *Incoming) Abort() {
	in.t.do(func() error {
		in.f.Close()
		unix.Unlinkat(in.dfd, in.temp, 0)
		return nil
	})
	unix.Close(in.dfd)
}

// replace renames temp over p's last element in dfd; a folder there, which
// a rename cannot replace, is removed first if it is empty.
func (t *Tree) replace(dfd int, temp, p string, before func(cur *Entry) error) error {
	name := path.Base(p)
	cur, err := t.statAt(dfd, name, p)
	if err != nil {
		return err
	}
	if before != nil {
		if err := before(cur); err != nil {
			return err
		}
	}
	if cur.Type == agentv1.SyncType_SYNC_DIR {
		if err := unix.Unlinkat(dfd, name, unix.AT_REMOVEDIR); err != nil {
			return fmt.Errorf("replace folder %s: %w", name, err)
		}
	}
	return unix.Renameat(dfd, temp, dfd, name)
}

// Mkdir makes folder e (or sets the permission bits of the one there);
// a file or symlink in its place is removed. before is as Commit's.
func (t *Tree) Mkdir(e *Entry, before func(cur *Entry) error) error {
	return t.do(func() error {
		dfd, err := t.mkdirs(e.Path)
		if err != nil {
			return err
		}
		defer unix.Close(dfd)
		name := path.Base(e.Path)
		cur, err := t.statAt(dfd, name, e.Path)
		if err != nil {
			return err
		}
		if before != nil {
			if err := before(cur); err != nil {
				return err
			}
		}
		if !isAbsent(cur) && cur.Type != agentv1.SyncType_SYNC_DIR {
			if err := unix.Unlinkat(dfd, name, 0); err != nil {
				return err
			}
		}
		if err := unix.Mkdirat(dfd, name, e.Perm&0o777); err != nil && !errors.Is(err, unix.EEXIST) {
			return err
		}
		fd, err := unix.Openat(dfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		if t.chown {
			unix.Fchown(fd, t.uid, t.gid)
		}
		return unix.Fchmod(fd, e.Perm&0o777)
	})
}

// Symlink makes symlink e, replacing what is there. before is as
// Commit's.
func (t *Tree) Symlink(e *Entry, before func(cur *Entry) error) error {
	return t.do(func() error {
		dfd, err := t.mkdirs(e.Path)
		if err != nil {
			return err
		}
		defer unix.Close(dfd)
		temp := tempName()
		if err := unix.Symlinkat(e.Target, dfd, temp); err != nil {
			return err
		}
		if t.chown {
			unix.Fchownat(dfd, temp, t.uid, t.gid, unix.AT_SYMLINK_NOFOLLOW)
		}
		if err := t.replace(dfd, temp, e.Path, before); err != nil {
			unix.Unlinkat(dfd, temp, 0)
			return err
		}
		return nil
	})
}

// Remove removes p, and a folder's contents first. keep is asked about
// each entry below p (and p): an entry it keeps stays, with the folders
// above it. Remove answers the paths kept.
func (t *Tree) Remove(p string, keep func(*Entry) bool, before func()) (kept []string, err error) {
	err = t.do(func() error {
		dfd, name, err := t.parent(p)
		if err != nil {
			if notThere(err) {
				return nil
			}
			return err
		}
		defer unix.Close(dfd)
		if before != nil {
			before()
		}
		return t.removeAt(dfd, name, p, keep, &kept)
	})
	return kept, err
}

func (t *Tree) removeAt(dfd int, name, p string, keep func(*Entry) bool, kept *[]string) error {
	e, err := t.statAt(dfd, name, p)
	if err != nil || isAbsent(e) {
		return err
	}
	if keep(e) {
		*kept = append(*kept, p)
		return nil
	}
	if e.Type != agentv1.SyncType_SYNC_DIR {
		if err := unix.Unlinkat(dfd, name, 0); err != nil && !notThere(err) {
			return err
		}
		return nil
	}
	fd, err := unix.Openat(dfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(fd), p)
	names, err := f.Readdirnames(-1)
	if err != nil {
		f.Close()
		return err
	}
	n := len(*kept)
	for _, child := range names {
		if isTemp(child) {
			unix.Unlinkat(fd, child, 0)
			continue
		}
		if err := t.removeAt(fd, child, path.Join(p, child), keep, kept); err != nil {
			f.Close()
			return err
		}
	}
	f.Close()
	if len(*kept) > n {
		return nil // something below stays, and so does the folder
	}
	if err := unix.Unlinkat(dfd, name, unix.AT_REMOVEDIR); err != nil && !notThere(err) {
		return err
	}
	return nil
}

// readAll reads the whole of r into w in chunks of size, calling chunk for
// each; it exists so both sides read files the same way.
func copyChunks(r io.Reader, size int, chunk func([]byte, bool) error) error {
	buf := make([]byte, size)
	for {
		n, err := io.ReadFull(r, buf)
		last := err == io.EOF || err == io.ErrUnexpectedEOF
		if err != nil && !last {
			return err
		}
		if err := chunk(buf[:n], last); err != nil {
			return err
		}
		if last {
			return nil
		}
	}
}
