package rootfs

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/paddock-dev/paddock/internal/template/fetch"
)

// guestHostname is the hostname a template boots with until the agent sets
// the sandbox's own.
const guestHostname = "paddock"

// Busybox assembles Debian's busybox-static into staging: /bin/busybox,
// one symlink per applet, and the few files a shell needs. It returns the
// owners of the paths not owned by root (relative path -> uid, gid).
func (b *Builder) Busybox(ctx context.Context, staging string) (map[string][2]int, error) {
	var deb string
	err := b.Steps.Run("fetching busybox-static", func() error {
		resolve := func() (fetch.Package, error) { return b.Apt.Show(ctx, "busybox-static") }
		p, err := resolve()
		if err != nil {
			return err
		}
		_, deb, err = b.Apt.Download(ctx, p, resolve)
		return err
	})
	if err != nil {
		return nil, err
	}
	u := b.Recipe.User
	owners := map[string][2]int{"home/" + u.Name: {u.UID, u.GID}}
	err = b.Steps.Run("assembling busybox root filesystem", func() error {
		unpacked := filepath.Join(b.Out.Dir, "busybox-deb")
		defer os.RemoveAll(unpacked)
		if _, err := b.Run.Run(ctx, "", "dpkg", "-x", deb, unpacked); err != nil {
			return err
		}
		for _, d := range []string{"bin", "sbin", "usr/bin", "usr/sbin", "etc", "dev", "proc", "sys", "run", "mnt", "var/tmp"} {
			if err := os.MkdirAll(filepath.Join(staging, d), 0o755); err != nil {
				return err
			}
		}
		bb := filepath.Join(staging, "bin", "busybox")
		if err := copyFile(filepath.Join(unpacked, "bin", "busybox"), bb, 0o755); err != nil {
			return fmt.Errorf("busybox-static package: %w", err)
		}
		list, err := b.Run.Run(ctx, "", bb, "--list-full")
		if err != nil {
			return err
		}
		if err := busyboxLinks(staging, string(list)); err != nil {
			return err
		}
		return writeBaseFiles(staging, u.Name, u.UID, u.GID, u.Shell)
	})
	return owners, err
}

// busyboxLinks makes a symlink to /bin/busybox for each applet path that
// "busybox --list-full" printed (bin/sh, usr/bin/awk, ...).
func busyboxLinks(root, list string) error {
	for _, p := range strings.Fields(list) {
		p = filepath.Clean(strings.TrimPrefix(p, "/"))
		if p == "bin/busybox" || p == "." || strings.HasPrefix(p, "..") {
			continue
		}
		dst := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		if err := os.Symlink("/bin/busybox", dst); err != nil && !os.IsExist(err) {
			return err
		}
	}
	return nil
}

// writeBaseFiles writes the accounts, hosts and hostname, and makes /tmp,
// /root and the user's home.
func writeBaseFiles(root, user string, uid, gid int, shell string) error {
	files := []struct {
		path, data string
		mode       os.FileMode
	}{
		{"etc/passwd", fmt.Sprintf("root:x:0:0:root:/root:/bin/sh\n%s:x:%d:%d:%s:/home/%s:%s\n", user, uid, gid, user, user, shell), 0o644},
		{"etc/group", fmt.Sprintf("root:x:0:\n%s:x:%d:\n", user, gid), 0o644},
		{"etc/shadow", fmt.Sprintf("root:*:19000:0:99999:7:::\n%s:*:19000:0:99999:7:::\n", user), 0o640},
		{"etc/hostname", guestHostname + "\n", 0o644},
		{"etc/hosts", hostsFile, 0o644},
	}
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(root, f.path), []byte(f.data), f.mode); err != nil {
			return err
		}
	}
	dirs := []struct {
		path string
		mode os.FileMode
	}{{"tmp", os.ModeSticky | 0o777}, {"root", 0o700}, {"home/" + user, 0o755}}
	for _, d := range dirs {
		p := filepath.Join(root, d.path)
		if err := os.MkdirAll(p, 0o755); err != nil {
			return err
		}
		if err := os.Chmod(p, d.mode); err != nil {
			return err
		}
	}
	if os.Geteuid() == 0 {
		return os.Lchown(filepath.Join(root, "home", user), uid, gid)
	}
	return nil
}

const hostsFile = "127.0.0.1\tlocalhost\n127.0.1.1\t" + guestHostname + "\n::1\tlocalhost ip6-localhost ip6-loopback\n"

func copyFile(src, dst string, mode os.FileMode) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	if err := os.WriteFile(dst, data, mode); err != nil {
		return err
	}
	return os.Chmod(dst, mode)
}
