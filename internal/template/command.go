package template

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os/exec"
	"path/filepath"
	"strings"
)

// runner runs host tools (apt-get, dpkg, mkfs.ext4, debootstrap) with
// arguments as data, never through a shell.
type runner struct{ log *slog.Logger }

// run runs argv in dir (or the current directory) and returns its standard
// output. On failure the error names the command and ends with the last
// lines it printed.
func (r runner) run(ctx context.Context, dir string, argv ...string) ([]byte, error) {
	path, err := toolPath(argv[0])
	if err != nil {
		return nil, fmt.Errorf("%s not found: %s", argv[0], installHint(argv[0]))
	}
	cmd := exec.CommandContext(ctx, path, argv[1:]...)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	r.log.Debug("template: running", "argv", argv, "dir", dir)
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		tail := lastLines(stderr.String()+stdout.String(), 8)
		return nil, fmt.Errorf("%s: %w\n%s", strings.Join(argv, " "), err, tail)
	}
	return stdout.Bytes(), nil
}

// sbinDirs hold tools a plain user's PATH lacks on Debian (mkfs.ext4 and
// debugfs are in /usr/sbin), which work without root on files of one's own.
var sbinDirs = []string{"/usr/sbin", "/sbin"}

// toolPath finds tool on the PATH, else in sbinDirs.
func toolPath(tool string) (string, error) {
	p, err := exec.LookPath(tool)
	if err == nil {
		return p, nil
	}
	for _, d := range sbinDirs {
		if p, err2 := exec.LookPath(filepath.Join(d, tool)); err2 == nil {
			return p, nil
		}
	}
	return "", err
}

// installHint says which Debian package provides a tool.
func installHint(tool string) string {
	pkg := map[string]string{
		"apt-get":     "apt",
		"apt-cache":   "apt",
		"dpkg":        "dpkg",
		"mkfs.ext4":   "e2fsprogs",
		"debugfs":     "e2fsprogs",
		"debootstrap": "debootstrap",
		"chroot":      "coreutils",
		"xz":          "xz-utils",
	}[tool]
	if pkg == "" {
		return "install it"
	}
	return "run \"apt-get install " + pkg + "\""
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
