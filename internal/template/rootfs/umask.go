package rootfs

import "syscall"

// WithGuestUmask runs fill, which makes a root filesystem in a staging
// folder, with umask 022: the guest's files get the modes its packages or
// image say, which the tools that make them (and this package's own 0755
// and 0644) take from the umask. The staging folder itself is 0700. All
// else under PADDOCK_HOME is made under paddock's umask (store.Mask), and
// what fill writes to the cache is made private by mode (cache files).
func WithGuestUmask(fill func() error) error {
	defer syscall.Umask(syscall.Umask(0o022))
	return fill()
}
