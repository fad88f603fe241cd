package template

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/paddock-dev/paddock/internal/store"
)

// kernel is an unpacked kernel in the cache.
type kernel struct {
	Package string // concrete package, e.g. linux-image-6.1.0-56-amd64
	Version string // its Debian version, e.g. 6.1.192-2
	KVer    string // the release under /lib/modules, e.g. 6.1.0-56-amd64
	Dir     kernelLayout
}

// prepareKernel resolves the recipe's kernel package, and fetches and
// unpacks it into the cache unless it is there already.
func (b *builder) prepareKernel(ctx context.Context) (kernel, error) {
	resolve := func() (pkgInfo, error) { return b.apt.resolveKernel(ctx, b.recipe.Kernel.Package) }
	var p pkgInfo
	err := b.steps.run("resolving kernel "+b.recipe.Kernel.Package, func() (err error) {
		p, err = resolve()
		return err
	})
	if err != nil {
		return kernel{}, err
	}
	k := kernel{Package: p.Name, Version: p.Version, Dir: b.home.kernel(p.Name, p.Version)}
	if _, err := os.Stat(k.Dir.vmlinux()); err == nil {
		k.KVer, err = kernelRelease(k.Dir)
		b.steps.note("kernel %s %s is in the cache", p.Name, p.Version)
		return k, err
	}
	var deb string
	err = b.steps.run("fetching kernel "+p.Name, func() (err error) {
		p, deb, err = b.apt.download(ctx, p, resolve)
		return err
	})
	if err != nil {
		return kernel{}, err
	}
	k = kernel{Package: p.Name, Version: p.Version, Dir: b.home.kernel(p.Name, p.Version)}
	err = b.steps.run("unpacking kernel "+p.Name+" "+p.Version, func() (err error) {
		k.KVer, err = b.unpackKernel(ctx, deb, k.Dir)
		return err
	})
	return k, err
}

// unpackKernel unpacks a kernel .deb into dst (atomically: a temp dir
// renamed into place when complete) and adds vmlinux and modules.dep.
func (b *builder) unpackKernel(ctx context.Context, deb string, dst kernelLayout) (string, error) {
	if _, err := os.Stat(dst.vmlinux()); err == nil {
		return kernelRelease(dst) // unpacked already
	}
	parent := filepath.Dir(dst.Dir)
	if err := os.MkdirAll(parent, 0o700); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(parent, ".unpack-*")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp) // a no-op once renamed
	if _, err := b.run.run(ctx, "", "dpkg", "-x", deb, tmp); err != nil {
		return "", err
	}
	// dpkg gives the package's modes (0755, 0644) whatever the umask when
	// run as root; the cache is its owner's only.
	if err := store.MakePrivate(tmp, nil); err != nil {
		return "", err
	}
	t := kernelLayout{Dir: tmp}
	kver, err := kernelRelease(t)
	if err != nil {
		return "", err
	}
	img, err := os.ReadFile(filepath.Join(t.bootDir(), "vmlinuz-"+kver))
	if err != nil {
		return "", fmt.Errorf("kernel package %s: %w", deb, err)
	}
	vmlinux, err := ExtractVmlinux(ctx, img)
	if err != nil {
		return "", fmt.Errorf("kernel package %s: %w", deb, err)
	}
	if err := os.WriteFile(t.vmlinux(), vmlinux, 0o600); err != nil {
		return "", err
	}
	if _, err := os.Stat(filepath.Join(t.modules(kver), modulesDepFile)); errors.Is(err, os.ErrNotExist) {
		if err := writeModulesDep(t.modules(kver)); err != nil {
			return "", fmt.Errorf("generate modules.dep: %w", err)
		}
	}
	if err := os.Rename(tmp, dst.Dir); err != nil {
		return "", err
	}
	return kver, nil
}

// kernelRelease is the one directory under lib/modules.
func kernelRelease(k kernelLayout) (string, error) {
	entries, err := os.ReadDir(k.modulesRoot())
	if err != nil {
		return "", fmt.Errorf("kernel package has no modules: %w", err)
	}
	if len(entries) != 1 || !entries[0].IsDir() {
		return "", fmt.Errorf("%s: want exactly one kernel release directory", k.modulesRoot())
	}
	return entries[0].Name(), nil
}
