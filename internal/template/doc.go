// Package template builds and opens paddock's templates: what a sandbox
// boots. A template is a guest kernel (an uncompressed vmlinux unpacked from
// Debian's linux-image package), its modules tree, and a sparse ext4 root
// filesystem image, made from a recipe in the repository's templates/
// directory. Build caches the result under $PADDOCK_HOME/templates/NAME by a
// hash of the recipe; Initramfs packs the guest agent and the kernel modules
// it needs into a newc cpio archive.
//
// layout.go is the one file that names the files of a template and of the
// build cache.
package template
