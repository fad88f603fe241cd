package rootfs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/paddock-dev/paddock/internal/store"
	"github.com/paddock-dev/paddock/internal/template"
)

// aptInstall installs packages (without recommends) into the Debian tree at
// root with apt-get in a chroot, from the recipe's mirror. Downloaded
// packages are kept in the cache and offered to apt again on the next build,
// so a forced rebuild downloads only the package lists.
func (b *Builder) aptInstall(ctx context.Context, root string, packages []string) error {
	archives := filepath.Join(root, "var", "cache", "apt", "archives")
	cache := b.Home.AptArchives(debootstrapKey(b.Recipe.Rootfs))
	if err := os.MkdirAll(cache, 0o700); err != nil {
		return err
	}
	if err := os.MkdirAll(archives, 0o755); err != nil {
		return err
	}
	if err := linkDebs(cache, archives); err != nil {
		return err
	}

	// No services start in the chroot; /proc is there for maintainer scripts.
	policy := filepath.Join(root, "usr", "sbin", "policy-rc.d")
	if err := os.WriteFile(policy, []byte("#!/bin/sh\nexit 101\n"), 0o755); err != nil {
		return err
	}
	defer os.Remove(policy)
	proc := filepath.Join(root, "proc")
	if err := unix.Mount("proc", proc, "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("mount /proc in the chroot: %w", err)
	}
	defer unix.Unmount(proc, unix.MNT_DETACH)

	apt := func(args ...string) error {
		argv := append([]string{"chroot", root, "env", "DEBIAN_FRONTEND=noninteractive", "apt-get",
			"-q", "-y", "-o", "Dpkg::Use-Pty=0"}, args...)
		_, err := b.Run.Run(ctx, "", argv...)
		return err
	}
	if err := apt("update"); err != nil {
		return err
	}
	install := append([]string{"install", "--no-install-recommends"}, packages...)
	if err := apt(install...); err != nil {
		return err
	}
	if err := linkDebs(archives, cache); err != nil {
		return err
	}
	// apt makes its packages 0644; in the cache they are private (the
	// guest tree's links to them go before the image is made, cleanDebian).
	_, err := store.MakePrivate(cache, nil)
	return err
}

// linkDebs hard-links the .deb files in src that dst lacks into dst.
func linkDebs(src, dst string) error {
	entries, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if !e.Type().IsRegular() || !strings.HasSuffix(e.Name(), ".deb") {
			continue
		}
		err := template.LinkFile(filepath.Join(src, e.Name()), filepath.Join(dst, e.Name()))
		if err != nil && !errors.Is(err, os.ErrExist) {
			return err
		}
	}
	return nil
}
