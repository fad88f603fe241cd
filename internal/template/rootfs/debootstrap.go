package rootfs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/paddock-dev/paddock/internal/store"
	"github.com/paddock-dev/paddock/internal/template"
	"github.com/paddock-dev/paddock/internal/template/recipe"
)

// ErrNeedRoot is returned when a debootstrap recipe is built without root.
var ErrNeedRoot = errors.New("needs root: run as root or with sudo")

// Debootstrap installs Debian into staging with debootstrap, from a
// tarball of the variant's packages kept in the cache (made with
// --make-tarball on the first build), installs the recipe's packages with
// apt-get in the chroot, then adds the user and cleans apt's caches.
//
// The recipe's packages go through apt, not debootstrap's --include:
// debootstrap's resolver ignores Provides, so npm's dependencies (node-*
// packages provided by others) are left unconfigured and debootstrap fails.
func (b *Builder) Debootstrap(ctx context.Context, staging string) error {
	rf := b.Recipe.Rootfs
	tarball := b.Home.DebootstrapTarball(debootstrapKey(rf))
	args := []string{"--variant=" + rf.Variant}
	if _, err := os.Stat(tarball); err != nil {
		err := b.Steps.Run("downloading Debian "+rf.Suite+" packages", func() error {
			return b.makeDebootstrapTarball(ctx, args, tarball)
		})
		if err != nil {
			return err
		}
	} else {
		b.Steps.Note("Debian %s packages are in the cache", rf.Suite)
	}
	err := b.Steps.Run("installing Debian "+rf.Suite+" (debootstrap)", func() error {
		argv := append([]string{"debootstrap"}, args...)
		argv = append(argv, "--unpack-tarball="+tarball, rf.Suite, staging, rf.Mirror)
		_, err := b.Run.Run(ctx, "", argv...)
		if err != nil {
			return withDebootstrapLog(err, staging)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(rf.Packages) > 0 {
		err := b.Steps.Run(fmt.Sprintf("installing %d packages (apt-get in the chroot)", len(rf.Packages)), func() error {
			return b.aptInstall(ctx, staging, rf.Packages)
		})
		if err != nil {
			return err
		}
	}
	if len(b.Recipe.Npm) > 0 {
		if err := b.npmInstall(ctx, staging, b.Recipe.Npm); err != nil {
			return err
		}
	}
	if ok, err := addDockerWrapper(staging); err != nil {
		return err
	} else if ok {
		b.Steps.Note("docker client waits for dockerd (/usr/local/bin/docker)")
	}
	u := b.Recipe.User
	err = b.Steps.Run("adding user "+u.Name, func() error {
		return b.addUser(ctx, staging, u)
	})
	if err != nil {
		return err
	}
	return b.Steps.Run("cleaning apt caches", func() error {
		return cleanDebian(ctx, b.Run, staging)
	})
}

func (b *Builder) makeDebootstrapTarball(ctx context.Context, args []string, tarball string) error {
	dir := b.Home.DebootstrapDir()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	work, err := os.MkdirTemp(b.Out.Dir, store.DebootstrapWorkPattern)
	if err != nil {
		return err
	}
	defer template.RemoveTree(work)
	tmp := tarball + ".tmp"
	defer os.Remove(tmp)
	rf := b.Recipe.Rootfs
	argv := append([]string{"debootstrap"}, args...)
	argv = append(argv, "--make-tarball="+tmp, rf.Suite, work, rf.Mirror)
	if _, err := b.Run.Run(ctx, "", argv...); err != nil {
		return withDebootstrapLog(err, work)
	}
	if err := os.Chmod(tmp, 0o600); err != nil { // debootstrap's is 0644
		return err
	}
	return os.Rename(tmp, tarball)
}

// debootstrapKey names the package tarball of a rootfs spec.
func debootstrapKey(rf recipe.RootfsSpec) string {
	b, _ := json.Marshal([]any{recipe.BuilderVersion, rf.Suite, rf.Variant, rf.Mirror})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}

func (b *Builder) addUser(ctx context.Context, root string, u recipe.UserSpec) error {
	chroot := func(args ...string) error {
		_, err := b.Run.Run(ctx, "", append([]string{"chroot", root}, args...)...)
		return err
	}
	if err := chroot("groupadd", "-g", strconv.Itoa(u.GID), u.Name); err != nil {
		return err
	}
	useradd := []string{"useradd", "-m", "-u", strconv.Itoa(u.UID), "-g", strconv.Itoa(u.GID),
		"-s", u.Shell, "-d", "/home/" + u.Name}
	if len(u.Groups) > 0 {
		useradd = append(useradd, "-G", groupsArg(u.Groups))
	}
	if err := chroot(append(useradd, u.Name)...); err != nil {
		return err
	}
	if u.Sudo {
		p := filepath.Join(root, "etc", "sudoers.d", u.Name)
		line := fmt.Sprintf("%s ALL=(ALL:ALL) NOPASSWD: ALL\n", u.Name)
		if err := os.WriteFile(p, []byte(line), 0o440); err != nil {
			return err
		}
		if err := os.Chmod(p, 0o440); err != nil {
			return err
		}
		if err := chroot("visudo", "-c", "-q", "-f", "/etc/sudoers.d/"+u.Name); err != nil {
			return fmt.Errorf("sudoers file for %s: %w", u.Name, err)
		}
	}
	// debootstrap copies the host's hostname and resolv.conf; the guest gets
	// its own (the agent writes resolv.conf at boot).
	files := map[string]string{
		"etc/hostname":    guestHostname + "\n",
		"etc/hosts":       hostsFile,
		"etc/resolv.conf": "",
	}
	for name, data := range files {
		p := filepath.Join(root, name)
		os.Remove(p) // it may be a symlink
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// cleanDebian empties apt's package cache and lists: they are stale the
// day after the build, and apt-get update restores them in the guest.
func cleanDebian(ctx context.Context, run template.Runner, root string) error {
	if _, err := run.Run(ctx, "", "chroot", root, "apt-get", "clean"); err != nil {
		return err
	}
	for _, dir := range []string{"var/lib/apt/lists", "var/cache/apt", "var/cache/debconf"} {
		entries, err := os.ReadDir(filepath.Join(root, dir))
		if err != nil {
			continue
		}
		for _, e := range entries {
			n := e.Name()
			if n == "lock" || n == "partial" || n == "archives" || n == "config.dat" || n == "passwords.dat" || n == "templates.dat" {
				continue
			}
			if err := os.RemoveAll(filepath.Join(root, dir, n)); err != nil {
				return err
			}
		}
	}
	for _, glob := range []string{"var/log/*.log", "var/log/apt/*", "var/cache/debconf/*-old"} {
		matches, _ := filepath.Glob(filepath.Join(root, glob))
		for _, m := range matches {
			os.RemoveAll(m)
		}
	}
	return nil
}

// withDebootstrapLog adds the end of debootstrap's own log, which says what
// failed, to err (the target directory and its log are removed after).
func withDebootstrapLog(err error, target string) error {
	data, rerr := os.ReadFile(filepath.Join(target, "debootstrap", "debootstrap.log"))
	if rerr != nil {
		return err
	}
	return fmt.Errorf("%w\ndebootstrap.log ends:\n%s", err, template.LastLines(string(data), 15))
}
