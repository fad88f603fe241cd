package template

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"path/filepath"
	"strings"
)

// Runner runs host tools (apt-get, dpkg, mkfs.ext4, debootstrap) with
// arguments as data, never through a shell.
type Runner struct{ Log *slog.Logger }

// Run runs argv in dir (or the current directory) and returns its standard
// output. On failure the error names the command and ends with the last
// lines it printed.
func (r Runner) Run(ctx context.Context, dir string, argv ...string) ([]byte, error) {
	path, err := ToolPath(argv[0])
	if err != nil {
		return nil, fmt.Errorf("%s not found: %s", argv[0], InstallHint(argv[0]))
	}
	cmd := exec.CommandContext(ctx, path, argv[1:]...)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	r.Log.Debug("template: running", "argv", argv, "dir", dir)
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		tail := LastLines(stderr.String()+stdout.String(), 8)
		return nil, fmt.Errorf("%s: %w\n%s", strings.Join(argv, " "), err, tail)
	}
	return stdout.Bytes(), nil
}

// sbinDirs hold tools a plain user's PATH lacks on Debian (mkfs.ext4 and
// debugfs are in /usr/sbin), which work without root on files of one's own.
var sbinDirs = []string{"/usr/sbin", "/sbin"}

// ToolPath finds tool on the PATH, else in sbinDirs.
func ToolPath(tool string) (string, error) {
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

// InstallHint says which Debian package provides a tool.
func InstallHint(tool string) string {
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

func LastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// MissingTools says which of tools are not installed and how to install
// them (nil when all are).
func MissingTools(tools ...string) error {
	var errs []error
	for _, tool := range tools {
		if _, err := ToolPath(tool); err != nil {
			errs = append(errs, fmt.Errorf("%s not found: %s", tool, InstallHint(tool)))
		}
	}
	return errors.Join(errs...)
}
