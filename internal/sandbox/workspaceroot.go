package sandbox

import (
	"fmt"
	"path/filepath"
	"strings"
)

// UnderRoot resolves dir, a host folder a remote caller asks to share as a
// workspace, and checks that it lies strictly under root (a server's
// --allow-workspace-root) after symlinks are followed.
func UnderRoot(root, dir string) (string, error) {
	if !filepath.IsAbs(dir) {
		return "", fmt.Errorf("%q: give an absolute host path under %s", dir, root)
	}
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return "", fmt.Errorf("%q: no such folder on the host", dir)
	}
	rootReal, err := filepath.EvalSymlinks(root)
	if err != nil {
		return "", fmt.Errorf("--allow-workspace-root %s: %w", root, err)
	}
	if real == rootReal || !strings.HasPrefix(real, rootReal+"/") {
		return "", fmt.Errorf("%q: not a folder under %s, the server's --allow-workspace-root", dir, root)
	}
	return real, nil
}
