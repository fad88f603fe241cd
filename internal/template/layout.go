package template

import (
	"path/filepath"
	"strings"
)

// This file names every file of a template and of the build cache. Nothing
// else in the package builds a path under $PADDOCK_HOME.
//
//	$PADDOCK_HOME/templates/NAME/          a built template (Layout)
//	    template.json                      metadata, written last
//	    recipe.yaml                        the recipe it was built from
//	    vmlinux                            uncompressed guest kernel (PVH)
//	    modules/                           lib/modules/KVER of the kernel
//	    root.ext4                          sparse ext4 root filesystem
//	$PADDOCK_HOME/templates/.NAME.lock     flock serialising builds of NAME
//	$PADDOCK_HOME/templates/.NAME.build-*  a build in progress (or crashed)
//	$PADDOCK_HOME/templates/.NAME.old-*    a replaced template being removed
//	$PADDOCK_HOME/cache/debs/PKG_VER.deb   downloaded packages
//	$PADDOCK_HOME/cache/kernels/PKG_VER/   unpacked kernel + vmlinux + modules.dep
//	$PADDOCK_HOME/cache/debootstrap/H.tgz  debootstrap --make-tarball output
//	$PADDOCK_HOME/cache/apt-archives/H/    .debs apt-get installed into it
//	$PADDOCK_HOME/cache/initramfs/H.cpio   generated initramfs archives

// Layout names the files of one template directory.
type Layout struct{ Dir string }

// Meta is template.json.
func (l Layout) Meta() string { return filepath.Join(l.Dir, "template.json") }

// Recipe is the recipe the template was built from.
func (l Layout) Recipe() string { return filepath.Join(l.Dir, "recipe.yaml") }

// Kernel is the uncompressed vmlinux.
func (l Layout) Kernel() string { return filepath.Join(l.Dir, "vmlinux") }

// Modules is the kernel's modules tree (what /lib/modules/KVER holds).
func (l Layout) Modules() string { return filepath.Join(l.Dir, "modules") }

// Rootfs is the ext4 root filesystem image.
func (l Layout) Rootfs() string { return filepath.Join(l.Dir, "root.ext4") }

// Staging is where a root filesystem tree is assembled during a build
// (inside the build's temporary directory; removed before it completes).
func (l Layout) Staging() string { return filepath.Join(l.Dir, "staging") }

// Home names the files under $PADDOCK_HOME that templates use.
type Home struct{ Dir string } // Dir is PADDOCK_HOME

func (h Home) TemplatesDir() string { return filepath.Join(h.Dir, "templates") }

func (h Home) Template(name string) Layout {
	return Layout{Dir: filepath.Join(h.TemplatesDir(), name)}
}

func (h Home) Lock(name string) string {
	return filepath.Join(h.TemplatesDir(), "."+name+".lock")
}

// BuildPattern and OldPattern are os.MkdirTemp patterns in templatesDir.
func BuildPattern(name string) string { return "." + name + ".build-*" }
func OldPattern(name string) string   { return "." + name + ".old-*" }

func (h Home) CacheDir() string { return filepath.Join(h.Dir, "cache") }

func (h Home) DebsDir() string { return filepath.Join(h.CacheDir(), "debs") }

// deb is a downloaded package, keyed by name and version.
func (h Home) Deb(pkg, version string) string {
	return filepath.Join(h.DebsDir(), pkg+"_"+fileSafe(version)+".deb")
}

func (h Home) KernelsDir() string { return filepath.Join(h.CacheDir(), "kernels") }

// kernel is an unpacked kernel package, keyed by name and version.
func (h Home) Kernel(pkg, version string) KernelLayout {
	return KernelLayout{Dir: filepath.Join(h.KernelsDir(), pkg+"_"+fileSafe(version))}
}

func (h Home) DebootstrapDir() string { return filepath.Join(h.CacheDir(), "debootstrap") }

// DebootstrapTarball is a --make-tarball result keyed by a hash of what
// went into it.
func (h Home) DebootstrapTarball(key string) string {
	return filepath.Join(h.DebootstrapDir(), key+".tgz")
}

// AptArchives keeps the .deb files apt downloaded into a debootstrap
// rootfs, keyed like its tarball.
func (h Home) AptArchives(key string) string {
	return filepath.Join(h.CacheDir(), "apt-archives", key)
}

// InitramfsPath is where Initramfs caches archives within a cache dir.
// InitramfsMemo records which archive an agent file (path, size, mtime)
// and template build map to.
func InitramfsMemo(cacheDir, key string) string {
	return filepath.Join(cacheDir, "initramfs", key+".memo")
}

func InitramfsPath(cacheDir, key string) string {
	return filepath.Join(cacheDir, "initramfs", key+".cpio")
}

// KernelLayout is the unpacked kernel package (dpkg -x) plus what the
// builder adds: vmlinux and modules.dep.
type KernelLayout struct{ Dir string }

func (k KernelLayout) Vmlinux() string     { return filepath.Join(k.Dir, "vmlinux") }
func (k KernelLayout) BootDir() string     { return filepath.Join(k.Dir, "boot") }
func (k KernelLayout) ModulesRoot() string { return filepath.Join(k.Dir, "lib", "modules") }
func (k KernelLayout) Modules(kver string) string {
	return filepath.Join(k.ModulesRoot(), kver)
}

// Files inside a modules tree.
const (
	ModulesDepFile     = "modules.dep"
	ModulesBuiltinFile = "modules.builtin"
)

// Paths inside the initramfs.
const (
	InitramfsInit       = "init"
	InitramfsModuleList = "etc/paddock/modules"
	InitramfsModulesDir = "lib/modules" // + /KVER
)

// fileSafe makes a Debian version usable in a file name (epochs have ':').
func fileSafe(v string) string { return strings.ReplaceAll(v, ":", "%3a") }

// ModuleName is the canonical name of a module file or name: base name
// without .ko, '-' as '_' (the kernel treats them alike).
func ModuleName(s string) string {
	s = filepath.Base(s)
	s = strings.TrimSuffix(s, ".ko")
	return strings.ReplaceAll(s, "-", "_")
}
