package e2bapi

import (
	"fmt"

	"github.com/paddock-dev/paddock/internal/sandbox"
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
	real, err := sandbox.UnderRoot(s.WorkspaceRoot, dir)
	if err != nil {
		return "", fmt.Errorf("metadata %s %w", workspaceKey, err)
	}
	return real, nil
}
