// Package template is paddock's templates on disk: what a sandbox boots. A
// template is a guest kernel (an uncompressed vmlinux), its modules tree and
// a sparse ext4 root filesystem image under $PADDOCK_HOME/templates/NAME,
// with template.json written last to say it is complete. This package opens
// and lists them, makes one from a sandbox's disk (Save), and holds what
// every way of making one shares: the lock, the temporary directory swapped
// in whole (Assemble), the named steps, the host-tool runner.
//
// The ways of making one, each a package below:
//
//	recipe/     the YAML recipes of templates/: parse, validate, hash
//	fetch/      apt packages, Debian kernels (vmlinux, modules.dep), npm tarballs into the cache
//	rootfs/     root filesystem trees (busybox, debootstrap, apt, npm) and the ext4 image
//	build/      a recipe's template: kernel + tree + image
//	oci/        an OCI image's template: resolve, unpack layers safely, image
//	initramfs/  the agent and the guest's kernel modules packed per boot
//
// internal/store/layout.go names the files of a template and of the build
// cache, as it names every file under PADDOCK_HOME.
package template
