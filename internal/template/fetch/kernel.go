package fetch

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/paddock-dev/paddock/internal/store"
	"github.com/paddock-dev/paddock/internal/template"
	"github.com/paddock-dev/paddock/internal/template/recipe"
)

// Kernel is an unpacked kernel in the cache.
type Kernel struct {
	Package string // concrete package, e.g. linux-image-6.1.0-56-amd64
	Version string // its Debian version, e.g. 6.1.192-2
	KVer    string // the release under /lib/modules, e.g. 6.1.0-56-amd64
	Dir     store.KernelLayout
}

// Kernel resolves the kernel package pkg, and fetches and
// unpacks it into the cache unless it is there already.
func (a *Apt) Kernel(ctx context.Context, pkg string) (Kernel, error) {
	resolve := func() (Package, error) { return a.resolveKernel(ctx, pkg) }
	var p Package
	err := a.Steps.Run("resolving kernel "+pkg, func() (err error) {
		p, err = resolve()
		return err
	})
	if err != nil {
		return Kernel{}, err
	}
	k := Kernel{Package: p.Name, Version: p.Version, Dir: a.Home.Kernel(p.Name, p.Version)}
	if _, err := os.Stat(k.Dir.Vmlinux()); err == nil {
		k.KVer, err = kernelRelease(k.Dir)
		a.Steps.Note("kernel %s %s is in the cache", p.Name, p.Version)
		return k, err
	}
	var deb string
	err = a.Steps.Run("fetching kernel "+p.Name, func() (err error) {
		p, deb, err = a.Download(ctx, p, resolve)
		return err
	})
	if err != nil {
		return Kernel{}, err
	}
	k = Kernel{Package: p.Name, Version: p.Version, Dir: a.Home.Kernel(p.Name, p.Version)}
	err = a.Steps.Run("unpacking kernel "+p.Name+" "+p.Version, func() (err error) {
		k.KVer, err = a.unpackKernel(ctx, deb, k.Dir)
		return err
	})
	return k, err
}

// unpackKernel unpacks a kernel .deb into dst (atomically: a temp dir
// renamed into place when complete) and adds vmlinux and modules.dep.
func (a *Apt) unpackKernel(ctx context.Context, deb string, dst store.KernelLayout) (string, error) {
	if _, err := os.Stat(dst.Vmlinux()); err == nil {
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
	if _, err := a.Run.Run(ctx, "", "dpkg", "-x", deb, tmp); err != nil {
		return "", err
	}
	// dpkg gives the package's modes (0755, 0644) whatever the umask when
	// run as root; the cache is its owner's only.
	if _, err := store.MakePrivate(tmp, nil); err != nil {
		return "", err
	}
	t := store.KernelLayout{Dir: tmp}
	kver, err := kernelRelease(t)
	if err != nil {
		return "", err
	}
	img, err := os.ReadFile(filepath.Join(t.BootDir(), "vmlinuz-"+kver))
	if err != nil {
		return "", fmt.Errorf("kernel package %s: %w", deb, err)
	}
	vmlinux, err := ExtractVmlinux(ctx, img)
	if err != nil {
		return "", fmt.Errorf("kernel package %s: %w", deb, err)
	}
	if err := os.WriteFile(t.Vmlinux(), vmlinux, 0o600); err != nil {
		return "", err
	}
	if _, err := os.Stat(filepath.Join(t.Modules(kver), store.ModulesDepFile)); errors.Is(err, os.ErrNotExist) {
		if err := writeModulesDep(t.Modules(kver)); err != nil {
			return "", fmt.Errorf("generate modules.dep: %w", err)
		}
	}
	if err := os.Rename(tmp, dst.Dir); err != nil {
		return "", err
	}
	return kver, nil
}

// kernelRelease is the one directory under lib/modules.
func kernelRelease(k store.KernelLayout) (string, error) {
	entries, err := os.ReadDir(k.ModulesRoot())
	if err != nil {
		return "", fmt.Errorf("kernel package has no modules: %w", err)
	}
	if len(entries) != 1 || !entries[0].IsDir() {
		return "", fmt.Errorf("%s: want exactly one kernel release directory", k.ModulesRoot())
	}
	return entries[0].Name(), nil
}

// KernelInto fetches the kernel package pkg (cached) and links it and its
// modules into the template being built.
func (a *Apt) KernelInto(ctx context.Context, pkg string, out store.TemplateLayout) (Kernel, error) {
	k, err := a.Kernel(ctx, pkg)
	if err != nil {
		return k, err
	}
	err = a.Steps.Run("linking kernel "+k.KVer, func() error {
		if err := template.LinkFile(k.Dir.Vmlinux(), out.Kernel()); err != nil {
			return err
		}
		return template.LinkTree(k.Dir.Modules(k.KVer), out.Modules())
	})
	return k, err
}

// Meta is template.json for template name, made with k, whose root image
// (size bytes apparent) is out's; the caller adds what its source adds.
func (k Kernel) Meta(name, hash string, size int64, out store.TemplateLayout) template.Meta {
	return template.Meta{
		Name:                 name,
		RecipeHash:           hash,
		BuilderVersion:       recipe.BuilderVersion,
		KernelPackage:        k.Package,
		KernelPackageVersion: k.Version,
		KernelVersion:        k.KVer,
		Created:              time.Now().UTC().Round(time.Second),
		DiskSize:             size,
		ImageBytes:           template.DiskUsage(out.Rootfs()),
	}
}
