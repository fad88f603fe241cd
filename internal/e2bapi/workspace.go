package e2bapi

import (
	"fmt"
	"path/filepath"
	"strings"
)

// workspaceKey is the metadata key with which a create asks for a host
// folder as its workspace (the SDKs send metadata unchanged). Only a
// server started with --allow-workspace-root DIR accepts it, and only for
// a folder under DIR.
const workspaceKey = "paddock.workspace"

// workspaceOf returns the host folder metadata asks for ("" for none),
// resolved, checked to be a folder under the server's workspace root.
func (s *Server) workspaceOf(md map[string]string) (string, error) {
	dir, ok := md[workspaceKey]
	if !ok {
		return "", nil
	}
	if s.WorkspaceRoot == "" {
		return "", fmt.Errorf("metadata %s: this server gives sandboxes no host folder (start paddock serve with --allow-workspace-root DIR)", workspaceKey)
	}
	if !filepath.IsAbs(dir) {
		return "", fmt.Errorf("metadata %s %q: an absolute host path under %s", workspaceKey, dir, s.WorkspaceRoot)
	}
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return "", fmt.Errorf("metadata %s %q: no such folder on the host", workspaceKey, dir)
	}
	root, err := filepath.EvalSymlinks(s.WorkspaceRoot)
	if err != nil {
		return "", fmt.Errorf("--allow-workspace-root %s: %w", s.WorkspaceRoot, err)
	}
	if real == root || !strings.HasPrefix(real, root+"/") {
		return "", fmt.Errorf("metadata %s %q: not a folder under %s, the server's --allow-workspace-root", workspaceKey, dir, s.WorkspaceRoot)
	}
	return real, nil
}
