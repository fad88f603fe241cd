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

// homeLayout names the files under $PADDOCK_HOME that templates use.
type homeLayout struct{ home string }

func (h homeLayout) templatesDir() string { return filepath.Join(h.home, "templates") }

func (h homeLayout) template(name string) Layout {
	return Layout{Dir: filepath.Join(h.templatesDir(), name)}
}

func (h homeLayout) lock(name string) string {
	return filepath.Join(h.templatesDir(), "."+name+".lock")
}

// buildPattern and oldPattern are os.MkdirTemp patterns in templatesDir.
func buildPattern(name string) string { return "." + name + ".build-*" }
func oldPattern(name string) string   { return "." + name + ".old-*" }

func (h homeLayout) cacheDir() string { return filepath.Join(h.home, "cache") }

func (h homeLayout) debsDir() string { return filepath.Join(h.cacheDir(), "debs") }

// deb is a downloaded package, keyed by name and version.
func (h homeLayout) deb(pkg, version string) string {
	return filepath.Join(h.debsDir(), pkg+"_"+fileSafe(version)+".deb")
}

func (h homeLayout) kernelsDir() string { return filepath.Join(h.cacheDir(), "kernels") }

// kernel is an unpacked kernel package, keyed by name and version.
func (h homeLayout) kernel(pkg, version string) kernelLayout {
	return kernelLayout{Dir: filepath.Join(h.kernelsDir(), pkg+"_"+fileSafe(version))}
}

func (h homeLayout) debootstrapDir() string { return filepath.Join(h.cacheDir(), "debootstrap") }

// debootstrapTarball is a --make-tarball result keyed by a hash of what
// went into it.
func (h homeLayout) debootstrapTarball(key string) string {
	return filepath.Join(h.debootstrapDir(), key+".tgz")
}

// aptArchives keeps the .deb files apt downloaded into a debootstrap
// rootfs, keyed like its tarball.
func (h homeLayout) aptArchives(key string) string {
	return filepath.Join(h.cacheDir(), "apt-archives", key)
}

// initramfsPath is where Initramfs caches archives within a cache dir.
// initramfsMemo records which archive an agent file (path, size, mtime)
// and template build map to.
func initramfsMemo(cacheDir, key string) string {
	return filepath.Join(cacheDir, "initramfs", key+".memo")
}

func initramfsPath(cacheDir, key string) string {
	return filepath.Join(cacheDir, "initramfs", key+".cpio")
}

// kernelLayout is the unpacked kernel package (dpkg -x) plus what the
// builder adds: vmlinux and modules.dep.
type kernelLayout struct{ Dir string }

func (k kernelLayout) vmlinux() string     { return filepath.Join(k.Dir, "vmlinux") }
func (k kernelLayout) bootDir() string     { return filepath.Join(k.Dir, "boot") }
func (k kernelLayout) modulesRoot() string { return filepath.Join(k.Dir, "lib", "modules") }
func (k kernelLayout) modules(kver string) string {
	return filepath.Join(k.modulesRoot(), kver)
}

// Files inside a modules tree.
const (
	modulesDepFile     = "modules.dep"
	modulesBuiltinFile = "modules.builtin"
)

// Paths inside the initramfs.
const (
	initramfsInit       = "init"
	initramfsModuleList = "etc/paddock/modules"
	initramfsModulesDir = "lib/modules" // + /KVER
)

// fileSafe makes a Debian version usable in a file name (epochs have ':').
func fileSafe(v string) string { return strings.ReplaceAll(v, ":", "%3a") }
