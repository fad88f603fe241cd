package oci

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"github.com/paddock-dev/paddock/internal/template/rootfs"
	"golang.org/x/sys/unix"
)

// extractor unpacks a flattened image (mutate.Extract's tar stream) into a
// staging directory. Every path is resolved with openat2(RESOLVE_IN_ROOT):
// a symlink in the image resolves inside the staging tree as it would in
// the guest, never to the host's files, whatever the tar holds.
//
// Nothing it writes on the host is privileged, even when paddock runs as
// root: files belong to the importer, without setuid or setgid bits, and
// device nodes and FIFOs are not made. Owners, those mode bits, file
// capabilities and special files are recorded in fixes and made inside
// the ext4 image (rootfs.FixInodes).
type extractor struct {
	root    int // the staging directory, O_PATH
	fixes   rootfs.InodeFixes
	dirMode map[string]uint32 // applied last, so 0555 dirs can be filled
	bytes   int64
}

func newExtractor(staging string) (*extractor, error) {
	fd, err := unix.Open(staging, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", staging, err)
	}
	return &extractor{root: fd, fixes: rootfs.NewInodeFixes(), dirMode: map[string]uint32{}}, nil
}

func (x *extractor) close() { unix.Close(x.root) }

// cleanName makes a tar entry name relative to the root: "" for the root.
func cleanName(name string) (string, error) {
	p := path.Clean("/" + name)
	if strings.Contains(name, "\x00") {
		return "", fmt.Errorf("tar entry %q: NUL in name", name)
	}
	return strings.TrimPrefix(p, "/"), nil
}

// openDir opens rel (a directory inside the root), creating it and its
// parents (0755, root's) when missing.
func (x *extractor) openDir(rel string) (int, error) {
	how := &unix.OpenHow{Flags: unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC, Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS}
	if rel == "" || rel == "." {
		return unix.Openat2(x.root, ".", how)
	}
	fd, err := unix.Openat2(x.root, rel, how)
	if !errors.Is(err, unix.ENOENT) {
		return fd, err
	}
	dir, base := path.Split(rel)
	pfd, err := x.openDir(strings.TrimSuffix(dir, "/"))
	if err != nil {
		return -1, err
	}
	defer unix.Close(pfd)
	if err := unix.Mkdirat(pfd, base, 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
		return -1, err
	}
	return unix.Openat2(x.root, rel, how)
}

// clear removes what is at base in dir unless it is a directory and keepDir.
func clearEntry(dir int, base string, keepDir bool) error {
	var st unix.Stat_t
	if err := unix.Fstatat(dir, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return err
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		if keepDir {
			return nil
		}
		return unix.Unlinkat(dir, base, unix.AT_REMOVEDIR)
	}
	return unix.Unlinkat(dir, base, 0)
}

// extract writes the tar stream r under the root.
func (x *extractor) extract(r io.Reader) error {
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("read image layers: %w", err)
		}
		if err := x.entry(h, tr); err != nil {
			return fmt.Errorf("unpack %s: %w", h.Name, err)
		}
	}
	// mutate.Extract ends the tar stream cleanly before it reports a layer
	// it refused (an unsafe path): read on to the stream's own end.
	if _, err := io.Copy(io.Discard, r); err != nil {
		return fmt.Errorf("read image layers: %w", err)
	}
	for rel, mode := range x.dirMode {
		if err := x.chmod(rel, mode); err != nil {
			return fmt.Errorf("chmod %s: %w", rel, err)
		}
	}
	return nil
}

func (x *extractor) chmod(rel string, mode uint32) error {
	fd, err := x.openDir(rel)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	x.fixes.Mode(rel, unix.S_IFDIR, mode)
	return unix.Fchmodat(x.root, "/proc/self/fd/"+fmt.Sprint(fd), mode&^rootfs.SetIDBits, 0)
}

// entry unpacks one tar entry beneath the root, replacing what an earlier
// layer left at its path.
func (x *extractor) entry(h *tar.Header, r io.Reader) error {
	rel, err := cleanName(h.Name)
	if err != nil {
		return err
	}
	mode := uint32(h.Mode) & 0o7777
	if rel == "" {
		if h.Typeflag == tar.TypeDir {
			x.dirMode[""] = mode
		}
		return nil
	}
	dir, base := path.Split(rel)
	pfd, err := x.openDir(strings.TrimSuffix(dir, "/"))
	if err != nil {
		return err
	}
	defer unix.Close(pfd)
	x.fixes.Forget(rel) // a later layer's entry replaces the earlier one

	e := tarEntry{h: h, rel: rel, dir: pfd, base: base, mode: mode}
	switch h.Typeflag {
	case tar.TypeDir:
		err = x.mkdir(e)
	case tar.TypeReg, tar.TypeRegA:
		err = x.file(e, r)
	case tar.TypeSymlink:
		err = x.symlink(e)
	case tar.TypeLink:
		return x.hardlink(e) // owner and mode are the target's
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		return x.node(e)
	default:
		return nil // pax headers and the like are folded into h already
	}
	if err != nil {
		return err
	}
	return x.finish(e)
}

// tarEntry is one entry being unpacked: its header, its path relative to
// the root, and its parent folder (open) and base name.
type tarEntry struct {
	h    *tar.Header
	rel  string
	dir  int
	base string
	mode uint32 // permission bits, set-id bits included
}

// mkdir makes a folder (keeping one an earlier layer made); its mode is
// set once everything beneath it is unpacked.
func (x *extractor) mkdir(e tarEntry) error {
	if err := clearEntry(e.dir, e.base, true); err != nil {
		return err
	}
	if err := unix.Mkdirat(e.dir, e.base, 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
		return err
	}
	x.dirMode[e.rel] = e.mode
	return nil
}

// file writes a regular file's bytes into a new file.
func (x *extractor) file(e tarEntry, r io.Reader) error {
	if err := clearEntry(e.dir, e.base, false); err != nil {
		return err
	}
	fd, err := unix.Openat(e.dir, e.base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(fd), e.rel)
	n, err := io.Copy(f, r)
	x.bytes += n
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// symlink makes a symbolic link; what it points at is never followed here.
func (x *extractor) symlink(e tarEntry) error {
	if err := clearEntry(e.dir, e.base, false); err != nil {
		return err
	}
	return unix.Symlinkat(e.h.Linkname, e.dir, e.base)
}

// hardlink links to a file unpacked before, itself resolved beneath the
// root.
func (x *extractor) hardlink(e tarEntry) error {
	target, err := cleanName(e.h.Linkname)
	if err != nil || target == "" {
		return fmt.Errorf("hard link to %q", e.h.Linkname)
	}
	tdir, tbase := path.Split(target)
	tfd, err := x.openDir(strings.TrimSuffix(tdir, "/"))
	if err != nil {
		return err
	}
	defer unix.Close(tfd)
	if err := clearEntry(e.dir, e.base, false); err != nil {
		return err
	}
	return unix.Linkat(tfd, tbase, e.dir, e.base, 0)
}

// node records a device node or FIFO, made in the image only; a file of
// the same name is replaced.
func (x *extractor) node(e tarEntry) error {
	if err := clearEntry(e.dir, e.base, false); err != nil {
		return err
	}
	x.fixes.Node(e.rel, e.h)
	return nil
}

// finish records the entry's owner and, but for a symlink, its set-id
// bits and capability for the image, and gives the host copy its mode
// (without set-id bits) and modification time.
func (x *extractor) finish(e tarEntry) error {
	x.fixes.Owner(e.rel, e.h.Uid, e.h.Gid)
	if e.h.Typeflag == tar.TypeSymlink {
		return nil
	}
	if e.h.Typeflag != tar.TypeDir {
		x.fixes.Mode(e.rel, unix.S_IFREG, e.mode)
		if err := unix.Fchmodat(e.dir, e.base, e.mode&^rootfs.SetIDBits, 0); err != nil {
			return err
		}
		if capb, ok := e.h.PAXRecords["SCHILY.xattr.security.capability"]; ok {
			x.fixes.Caps[e.rel] = []byte(capb)
		}
	}
	ts := []unix.Timespec{unix.NsecToTimespec(e.h.ModTime.UnixNano()), unix.NsecToTimespec(e.h.ModTime.UnixNano())}
	_ = unix.UtimesNanoAt(e.dir, e.base, ts, unix.AT_SYMLINK_NOFOLLOW)
	return nil
}

// guestDirs are made in an imported root filesystem when the image lacks
// them: the agent mounts or writes there.
var guestDirs = []struct {
	path string
	mode uint32
}{
	{"dev", 0o755}, {"proc", 0o555}, {"sys", 0o555}, {"run", 0o755},
	{"tmp", 0o1777}, {"etc", 0o755}, {"root", 0o700}, {"home", 0o755},
	{"var/tmp", 0o1777},
}

// addGuestDirs makes guestDirs that the image lacks.
func (x *extractor) addGuestDirs() error {
	for _, d := range guestDirs {
		how := &unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC, Resolve: unix.RESOLVE_IN_ROOT}
		if fd, err := unix.Openat2(x.root, d.path, how); err == nil {
			unix.Close(fd)
			continue
		}
		fd, err := x.openDir(d.path)
		if err != nil {
			return fmt.Errorf("make /%s: %w", d.path, err)
		}
		unix.Close(fd)
		if err := x.chmod(d.path, d.mode); err != nil {
			return err
		}
	}
	return nil
}
