package rootfs

import (
	"context"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/paddock-dev/paddock/internal/template/fetch"
	"github.com/paddock-dev/paddock/internal/template/recipe"
)

// npmWork is the npm step's folder in the Debian tree: owned by buildUID
// while the step runs (npm's home, temporary files, cache, the checked
// tarballs and the staging prefix), removed after.
const npmWork = "/var/cache/paddock-npm"

// npmPrefix is where packages are installed in the image.
const npmPrefix = "usr/local"

// chrootPath is the PATH of commands run in the tree: /usr/local/bin
// first, so a node installed from npm wins over Debian's.
const chrootPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// npmInstall installs the recipe's npm packages into /usr/local of the
// Debian tree at root, in order, one package at a time, so that a Node.js
// and an npm installed by earlier entries run the later ones. For each:
//
//  1. fetch: the builder downloads the tarball and checks it against the
//     recipe's integrity (npmFetch); nothing runs.
//  2. unpack: npm install -g --ignore-scripts of that file into a staging
//     prefix, in a build jail with the host's network: npm fetches the
//     package's dependencies into its cache; no package script runs.
//  3. scripts: the same install again, --offline from that cache into an
//     emptied staging prefix, in a build jail without network: the
//     packages' install scripts run here. (An install rather than npm
//     rebuild: a failing script of an optional dependency, such as a
//     native module that cannot compile, drops that dependency as a
//     normal install does, where rebuild would fail the build.)
//  4. copy: the builder copies the staging prefix into /usr/local as
//     root's files (installPrefix: no symlink followed, no set-id bit,
//     no device node).
//
// The jail (buildJail) is root in its own user namespace and buildUID on
// the host, so nothing from the registry runs as host root. Anything
// buildUID left elsewhere in the tree (a world-writable /tmp) is removed.
//
// npm trusts the host's CA bundle during the build (for a TLS-inspecting
// proxy whose CA is installed on the host but not in the template); the
// bundle goes with npmWork and never reaches the template.
func (b *Builder) npmInstall(ctx context.Context, root string, pkgs []recipe.NpmPackage) error {
	restore, err := openTreeRoot(root)
	if err != nil {
		return err
	}
	defer restore()
	work := filepath.Join(root, npmWork)
	defer os.RemoveAll(work)
	if err := makeNpmWork(work); err != nil {
		return err
	}
	env := []string{chrootPath, "HOME=" + npmWork + "/home", "TMPDIR=" + npmWork + "/tmp"}
	flags := []string{"--global", "--prefix", npmWork + "/prefix", "--cache", npmWork + "/cache",
		"--no-fund", "--no-audit", "--no-update-notifier", "--loglevel", "error"}
	if ca := hostCABundle(); ca != "" {
		data, err := os.ReadFile(ca)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(work, "host-ca.crt"), data, 0o644); err != nil {
			return err
		}
		env = append(env, "NODE_EXTRA_CA_CERTS="+npmWork+"/host-ca.crt")
		flags = append(flags, "--cafile", npmWork+"/host-ca.crt")
	}
	online := buildJail{root: root, uid: buildUID, net: true, log: b.Run.Log}
	offline := buildJail{root: root, uid: buildUID, log: b.Run.Log}
	client := &http.Client{}
	for _, p := range pkgs {
		err := b.Steps.Run("npm "+p.String()+" (integrity checked, unprivileged, scripts offline)", func() error {
			tgz := npmWork + "/pkg/" + strings.ReplaceAll(strings.TrimPrefix(p.Package, "@"), "/", "+") + "-" + p.Version + ".tgz"
			if err := fetch.FetchNpmTarball(ctx, client, fetch.NpmRegistry, p, filepath.Join(root, tgz)); err != nil {
				return err
			}
			npm := npmCommand(root)
			install := append(append(append(npm, "install"), flags...), "--ignore-scripts", tgz)
			if _, err := online.run(ctx, env, install...); err != nil {
				return fmt.Errorf("npm install %s: %w", p, err)
			}
			if err := resetBuildDir(filepath.Join(work, "prefix")); err != nil {
				return err
			}
			scripts := append(append(append(npm, "install"), flags...), "--offline", tgz)
			if _, err := offline.run(ctx, env, scripts...); err != nil {
				return fmt.Errorf("npm install scripts of %s: %w", p, err)
			}
			if err := installPrefix(root, filepath.Join(npmWork, "prefix"), npmPrefix); err != nil {
				return fmt.Errorf("npm %s: %w", p, err)
			}
			return resetBuildDir(filepath.Join(work, "prefix"))
		})
		if err != nil {
			return err
		}
	}
	n, err := removeOwnedBy(root, buildUID, work)
	if n > 0 {
		b.Steps.Note("removed %d files the npm step left outside /usr/local", n)
	}
	return err
}

// npmCommand is the npm that installs the next package: once the recipe
// has installed an npm of its own (npm@10, after a Node.js from npm), that
// one; until then Debian's npm on Debian's Node.js (Debian's npm 9 fails
// on Node.js 22).
func npmCommand(root string) []string {
	if _, err := os.Lstat(filepath.Join(root, npmPrefix, "bin/npm")); err == nil {
		return []string{"/usr/local/bin/npm"}
	}
	return []string{"/usr/bin/node", "/usr/bin/npm"}
}

// openTreeRoot lets the build jail search the tree's root folder (made
// 0700 by the builder) for the npm step, and returns what puts its mode
// back. The folders above it stay closed: the jail enters the tree
// through a descriptor.
func openTreeRoot(root string) (func(), error) {
	fi, err := os.Lstat(root)
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(root, 0o755); err != nil {
		return nil, err
	}
	return func() { os.Chmod(root, fi.Mode().Perm()) }, nil
}

// makeNpmWork makes npmWork and its folders, owned by buildUID.
func makeNpmWork(work string) error {
	if err := os.MkdirAll(filepath.Dir(work), 0o755); err != nil {
		return err
	}
	for _, d := range []string{"", "home", "tmp", "cache", "pkg", "prefix"} {
		if err := resetBuildDir(filepath.Join(work, d)); err != nil {
			return err
		}
	}
	return nil
}

// resetBuildDir makes dir an empty folder owned by buildUID.
func resetBuildDir(dir string) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		return err
	}
	return os.Lchown(dir, buildUID, buildUID)
}

// removeOwnedBy removes every entry of the tree at root that uid owns
// (as owner or group), except under skip, and returns how many it
// removed. Symlinks are not followed.
func removeOwnedBy(root string, uid uint32, skip string) (int, error) {
	n := 0
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == skip {
			return filepath.SkipDir
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok || (st.Uid != uid && st.Gid != uid) {
			return nil
		}
		if p == root {
			return fmt.Errorf("the build tree's root is owned by uid %d", uid)
		}
		n++
		if err := os.RemoveAll(p); err != nil {
			return err
		}
		if d.IsDir() {
			return filepath.SkipDir
		}
		return nil
	})
	return n, err
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
