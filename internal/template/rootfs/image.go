package rootfs

import (
	"archive/tar"
	"context"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/paddock-dev/paddock/internal/template"
	"golang.org/x/sys/unix"
)

// MakeImage makes a sparse ext4 image of size bytes holding the tree at
// staging (mkfs.ext4 -d: no mount, no root). Nothing is reserved for root:
// the agent's user should get the whole disk.
func MakeImage(ctx context.Context, run template.Runner, staging, image string, size int64) error {
	f, err := os.OpenFile(image, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	err = f.Truncate(size)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	_, err = run.Run(ctx, "", "mkfs.ext4", "-q", "-F", "-L", "root", "-m", "0",
		"-E", "root_owner=0:0", "-d", staging, image, fmt.Sprintf("%dk", size>>10))
	return err
}

// SetIDBits are the setuid and setgid bits, which an unpack never sets
// on the host.
const SetIDBits = 0o6000

// InodeFixes is what a build or import leaves for the image itself rather
// than the host: owners other than root's, setuid and setgid modes, file
// capabilities, and device nodes and FIFOs. Paths are relative to the
// staging root.
type InodeFixes struct {
	Owners map[string][2]int // uid, gid; absent: root's
	Modes  map[string]uint32 // full i_mode of files whose bits include SetIDBits
	Caps   map[string][]byte // security.capability
	Nodes  map[string]SpecialNode
}

// SpecialNode is a device node or FIFO to make in the image.
type SpecialNode struct {
	Kind         byte // 'c', 'b' or 'p'
	Mode         uint32
	Major, Minor int64
}

// NewInodeFixes is an empty record.
func NewInodeFixes() InodeFixes {
	return InodeFixes{Owners: map[string][2]int{}, Modes: map[string]uint32{}, Caps: map[string][]byte{}, Nodes: map[string]SpecialNode{}}
}

// Owner records a file's owner unless it is root's.
func (f InodeFixes) Owner(rel string, uid, gid int) {
	if uid != 0 || gid != 0 {
		f.Owners[rel] = [2]int{uid, gid}
	}
}

// Mode records perm for the file of type kind (S_IFREG, S_IFDIR) at rel
// when it has bits the host copy must not.
func (f InodeFixes) Mode(rel string, kind, perm uint32) {
	if perm&SetIDBits != 0 {
		f.Modes[rel] = kind | perm
	} else {
		delete(f.Modes, rel)
	}
}

// Node records a device node or FIFO from a tar header, and its owner.
func (f InodeFixes) Node(rel string, h *tar.Header) {
	kind := map[byte]byte{tar.TypeChar: 'c', tar.TypeBlock: 'b', tar.TypeFifo: 'p'}[h.Typeflag]
	f.Nodes[rel] = SpecialNode{Kind: kind, Mode: uint32(h.Mode) & 0o7777, Major: h.Devmajor, Minor: h.Devminor}
	f.Owner(rel, h.Uid, h.Gid)
}

// Forget drops what was recorded for rel (a later layer replaces it).
func (f InodeFixes) Forget(rel string) {
	delete(f.Owners, rel)
	delete(f.Modes, rel)
	delete(f.Caps, rel)
	delete(f.Nodes, rel)
}

// FixInodes applies fixes inside the image with debugfs: every path of
// staging gets its owner (root's unless recorded; mkfs.ext4 -d copies the
// builder's own), recorded modes and capabilities, and the recorded
// device nodes and FIFOs whose directory exists are made.
func FixInodes(ctx context.Context, run template.Runner, staging, image string, fixes InodeFixes) error {
	var script strings.Builder
	dir := filepath.Dir(image)
	var extra []string // files of capability values, removed at the end
	defer func() {
		for _, p := range extra {
			os.Remove(p)
		}
	}()
	err := filepath.WalkDir(staging, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(staging, p)
		if err != nil || rel == "." {
			return err
		}
		rel = filepath.ToSlash(rel)
		if err := debugfsName(rel); err != nil {
			return err
		}
		o := fixes.Owners[rel]
		fmt.Fprintf(&script, "sif /%s uid %d\nsif /%s gid %d\n", rel, o[0], rel, o[1])
		if m, ok := fixes.Modes[rel]; ok {
			fmt.Fprintf(&script, "sif /%s mode 0%o\n", rel, m)
		}
		if c, ok := fixes.Caps[rel]; ok {
			capFile := filepath.Join(dir, fmt.Sprintf("cap-%d", len(extra)))
			if err := os.WriteFile(capFile, c, 0o600); err != nil {
				return err
			}
			extra = append(extra, capFile)
			fmt.Fprintf(&script, "ea_set -f %s /%s security.capability\n", capFile, rel)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for rel, n := range fixes.Nodes {
		parent, base := path.Split(rel)
		if err := debugfsName(rel); err != nil {
			return err
		}
		if st, err := os.Lstat(filepath.Join(staging, parent)); err != nil || !st.IsDir() {
			continue // its directory was replaced by a later layer
		}
		if _, err := os.Lstat(filepath.Join(staging, rel)); err == nil {
			continue
		}
		kind := map[byte]uint32{'c': unix.S_IFCHR, 'b': unix.S_IFBLK, 'p': unix.S_IFIFO}[n.Kind]
		fmt.Fprintf(&script, "cd /%s\n", parent)
		if n.Kind == 'p' {
			fmt.Fprintf(&script, "mknod %s p\n", base)
		} else {
			fmt.Fprintf(&script, "mknod %s %c %d %d\n", base, n.Kind, n.Major, n.Minor)
		}
		o := fixes.Owners[rel]
		fmt.Fprintf(&script, "cd /\nsif /%s mode 0%o\nsif /%s uid %d\nsif /%s gid %d\n", rel, kind|n.Mode, rel, o[0], rel, o[1])
	}
	cmds := filepath.Join(dir, "debugfs-inodes.txt")
	if err := os.WriteFile(cmds, []byte(script.String()), 0o600); err != nil {
		return err
	}
	defer os.Remove(cmds)
	_, err = run.Run(ctx, "", "debugfs", "-w", "-f", cmds, image)
	return err
}

// debugfsName refuses a path that debugfs's command parser would split.
func debugfsName(rel string) error {
	if strings.ContainsAny(rel, " \t\n\"") {
		return fmt.Errorf("cannot set the owner of %q with debugfs", rel)
	}
	return nil
}
