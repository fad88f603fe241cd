package guest

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// FilesVerb, as an exec's argv[0], runs the agent's own file tool as the
// exec's user (the agent binary again, through /proc/self/exe): the
// filesystem operations of paddock serve's envd (stat, list, mkdir, move,
// remove), with the guest's permissions for that user and paths relative
// to the user's home, whatever the template's userland has.
const FilesVerb = "paddock-files"

// Exit codes of the file tool, read by paddock serve.
const (
	FilesNotFound   = 2
	FilesExists     = 3
	FilesPermission = 4
	FilesUsage      = 5
)

// FileEntry is what the file tool prints per entry, one JSON object a line.
type FileEntry struct {
	Name          string `json:"name"`
	Type          string `json:"type"` // file, dir, symlink
	Path          string `json:"path"`
	Size          int64  `json:"size"`
	Mode          uint32 `json:"mode"`
	Permissions   string `json:"permissions"`
	Owner         string `json:"owner"`
	Group         string `json:"group"`
	ModifiedNanos int64  `json:"mtime_ns"`
	SymlinkTarget string `json:"symlink_target,omitempty"`
}

// RunFiles is the file tool: args are an operation and its paths; entries
// go to stdout, errors to stderr, and the exit code says what failed.
func RunFiles(args []string, stdout, stderr io.Writer) int {
	enc := json.NewEncoder(stdout)
	fail := func(err error) int {
		fmt.Fprintln(stderr, err)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return FilesNotFound
		case errors.Is(err, fs.ErrExist):
			return FilesExists
		case errors.Is(err, fs.ErrPermission):
			return FilesPermission
		}
		return 1
	}
	print := func(p string) int {
		e, err := fileEntry(p)
		if err != nil {
			return fail(err)
		}
		enc.Encode(e)
		return 0
	}
	if len(args) < 2 {
		fmt.Fprintln(stderr, "usage: paddock-files stat|list|mkdir|move|remove|watch PATH...")
		return FilesUsage
	}
	p, err := filepath.Abs(args[1])
	if err != nil {
		return fail(err)
	}
	switch {
	case args[0] == "stat" && len(args) == 2:
		return print(p)
	case args[0] == "list" && len(args) == 3:
		depth, err := strconv.Atoi(args[2])
		if err != nil || depth < 1 {
			depth = 1
		}
		return listEntries(p, depth, enc, fail)
	case args[0] == "mkdir" && len(args) == 2:
		if _, err := os.Lstat(p); err == nil {
			return fail(&fs.PathError{Op: "mkdir", Path: p, Err: fs.ErrExist})
		}
		if err := os.MkdirAll(p, 0o755); err != nil {
			return fail(err)
		}
		return print(p)
	case args[0] == "move" && len(args) == 3:
		dst, err := filepath.Abs(args[2])
		if err != nil {
			return fail(err)
		}
		if err := os.Rename(p, dst); err != nil {
			return fail(err)
		}
		return print(dst)
	case args[0] == "watch" && len(args) == 3:
		return watchDir(p, args[2] == "recursive", stdout, fail)
	case args[0] == "remove" && len(args) == 2:
		if _, err := os.Lstat(p); err != nil {
			return fail(err)
		}
		if err := os.RemoveAll(p); err != nil {
			return fail(err)
		}
		return 0
	}
	fmt.Fprintf(stderr, "paddock-files: unknown operation %q with %d arguments\n", args[0], len(args)-1)
	return FilesUsage
}

// listEntries prints the entries under dir down to depth levels.
func listEntries(dir string, depth int, enc *json.Encoder, fail func(error) int) int {
	st, err := os.Stat(dir)
	if err != nil {
		return fail(err)
	}
	if !st.IsDir() {
		return fail(fmt.Errorf("%s is not a directory", dir))
	}
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == dir {
				return err
			}
			return nil // an unreadable folder below: skip it
		}
		if p == dir {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		level := strings.Count(rel, "/") + 1
		if e, err := fileEntry(p); err == nil {
			enc.Encode(e)
		}
		if d.IsDir() && level >= depth {
			return filepath.SkipDir
		}
		return nil
	})
	if err != nil {
		return fail(err)
	}
	return 0
}

// fileEntry describes p without following a symlink at p.
func fileEntry(p string) (FileEntry, error) {
	fi, err := os.Lstat(p)
	if err != nil {
		return FileEntry{}, err
	}
	e := FileEntry{
		Name: filepath.Base(p), Path: p, Size: fi.Size(), Mode: uint32(fi.Mode().Perm()),
		Permissions: fi.Mode().String(), ModifiedNanos: fi.ModTime().UnixNano(), Type: "file",
	}
	switch {
	case fi.IsDir():
		e.Type = "dir"
	case fi.Mode()&fs.ModeSymlink != 0:
		e.Type = "symlink"
		e.SymlinkTarget, _ = os.Readlink(p)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		e.Owner, e.Group = strconv.Itoa(int(st.Uid)), strconv.Itoa(int(st.Gid))
		if u, err := user.LookupId(e.Owner); err == nil {
			e.Owner = u.Username
		}
		if g, err := user.LookupGroupId(e.Group); err == nil {
			e.Group = g.Name
		}
	}
	return e, nil
}
