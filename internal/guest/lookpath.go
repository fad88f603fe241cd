package guest

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// errNotExecutable is a command that exists but may not be executed.
var errNotExecutable = errors.New("permission denied")

// lookPath finds file in the directories of pathEnv (the exec's PATH, not
// the agent's), or, when it contains a slash, relative to cwd. It returns
// fs.ErrNotExist when there is no such file and errNotExecutable when the
// only match is a directory or lacks execute bits, so the caller can answer
// 127 or 126 as a shell does.
func lookPath(file, pathEnv, cwd string) (string, error) {
	if strings.Contains(file, "/") {
		p := file
		if !filepath.IsAbs(p) {
			p = filepath.Join(cwd, p)
		}
		return p, checkExecutable(p)
	}
	denied := ""
	for _, dir := range filepath.SplitList(pathEnv) {
		if dir == "" {
			dir = "."
		}
		if !filepath.IsAbs(dir) {
			dir = filepath.Join(cwd, dir)
		}
		p := filepath.Join(dir, file)
		switch err := checkExecutable(p); {
		case err == nil:
			return p, nil
		case errors.Is(err, errNotExecutable) && denied == "":
			denied = p
		}
	}
	if denied != "" {
		return denied, errNotExecutable
	}
	return "", fs.ErrNotExist
}

func checkExecutable(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fs.ErrNotExist
		}
		return errNotExecutable
	}
	if fi.IsDir() || fi.Mode().Perm()&0o111 == 0 {
		return errNotExecutable
	}
	return nil
}
