package rootfs

import (
	"os"
	"path/filepath"
	"strings"
)

// dockerWrapper is /usr/local/bin/docker in a template with Docker Engine.
// The guest agent starts dockerd at boot; on a sandbox restored from a
// saved VM dockerd may still be starting when the first command arrives,
// so the wrapper waits for its socket (up to 60 s) before running the real
// client.
const dockerWrapper = `#!/bin/sh
# paddock: the guest agent starts dockerd at boot (see docs/IMAGES.md).
# Wait for its socket so a docker command right after create does not race
# it, then run the real client.
if [ -z "$DOCKER_HOST" ]; then
	i=0
	while [ ! -S /run/docker.sock ] && [ $i -lt 600 ]; do
		sleep 0.1
		i=$((i + 1))
	done
fi
exec /usr/bin/docker "$@"
`

// addDockerWrapper installs dockerWrapper when the tree has Docker's
// client.
func addDockerWrapper(root string) (bool, error) {
	if _, err := os.Stat(filepath.Join(root, "usr", "bin", "docker")); err != nil {
		return false, nil
	}
	p := filepath.Join(root, "usr", "local", "bin", "docker")
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return false, err
	}
	return true, os.WriteFile(p, []byte(dockerWrapper), 0o755)
}

// groupsArg is useradd's -G value.
func groupsArg(groups []string) string { return strings.Join(groups, ",") }
