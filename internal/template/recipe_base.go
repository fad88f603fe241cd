package template

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// inherit fills the kernel, rootfs, user and disk size of a recipe with a
// base from the base recipe (already defaulted and validated). A recipe
// with a base may not set them itself, and a base may not have a base: one
// level keeps a recipe readable in two files.
func (r *Recipe) inherit() error {
	var errs []error
	if r.Kernel != (KernelSpec{}) {
		errs = append(errs, errors.New("kernel is taken from the base recipe: leave it out"))
	}
	if r.Rootfs.Kind != "" || r.Rootfs.Suite != "" || r.Rootfs.Variant != "" || r.Rootfs.Mirror != "" || len(r.Rootfs.Packages) > 0 {
		errs = append(errs, errors.New("rootfs is taken from the base recipe: leave it out"))
	}
	if r.User.Name != "" || r.User.UID != 0 || r.User.GID != 0 || r.User.Shell != "" || r.User.Sudo || len(r.User.Groups) > 0 {
		errs = append(errs, errors.New("user is taken from the base recipe: leave it out"))
	}
	if r.DiskSize != "" {
		errs = append(errs, errors.New("disk_size is taken from the base recipe: leave it out"))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	base, err := LoadRecipe(r.Base)
	if err != nil {
		return fmt.Errorf("base: %w", err)
	}
	if base.Base != "" {
		return fmt.Errorf("base %q has a base itself (%q): use that one", r.Base, base.Base)
	}
	r.Kernel, r.Rootfs, r.User, r.DiskSize = base.Kernel, base.Rootfs, base.User, base.DiskSize
	r.Npm = append(append([]NpmPackage(nil), base.Npm...), r.Npm...)
	return nil
}

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
