package recipe

import (
	"errors"
	"fmt"
)

// inherit fills the kernel, rootfs, user and disk size of a recipe with a
// base from the base recipe (already defaulted and validated). A recipe
// with a base may not set them itself, and a base may not have a base: one
// level keeps a recipe readable in two files.
func (r *Recipe) inherit() error {
	var errs []error
	if r.Kernel != (KernelSpec{}) {
		errs = append(errs, errors.New("kernel is taken from the base recipe: leave it out"))
	}
	if r.Rootfs.Kind != "" || r.Rootfs.Suite != "" || r.Rootfs.Variant != "" || r.Rootfs.Mirror != "" || len(r.Rootfs.Packages) > 0 {
		errs = append(errs, errors.New("rootfs is taken from the base recipe: leave it out"))
	}
	if r.User.Name != "" || r.User.UID != 0 || r.User.GID != 0 || r.User.Shell != "" || r.User.Sudo || len(r.User.Groups) > 0 {
		errs = append(errs, errors.New("user is taken from the base recipe: leave it out"))
	}
	if r.DiskSize != "" {
		errs = append(errs, errors.New("disk_size is taken from the base recipe: leave it out"))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	base, err := Load(r.Base)
	if err != nil {
		return fmt.Errorf("base: %w", err)
	}
	if base.Base != "" {
		return fmt.Errorf("base %q has a base itself (%q): use that one", r.Base, base.Base)
	}
	r.Kernel, r.Rootfs, r.User, r.DiskSize = base.Kernel, base.Rootfs, base.User, base.DiskSize
	r.Npm = append(append([]NpmPackage(nil), base.Npm...), r.Npm...)
	return nil
}
