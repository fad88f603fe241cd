package store

import (
	"fmt"
	"path/filepath"
	"strings"
)

// CheckGuestPath refuses a guest path a folder cannot be synced to: not
// absolute and clean, or one of the guest system's own folders.
func CheckGuestPath(g string) error {
	if !filepath.IsAbs(g) || filepath.Clean(g) != g {
		return fmt.Errorf("guest path %q is not a clean absolute path", g)
	}
	for _, sys := range []string{"/", "/bin", "/boot", "/dev", "/etc", "/lib", "/lib64", "/proc", "/run", "/sbin", "/sys", "/usr", "/var", "/tmp", "/home", "/root", "/opt"} {
		if g == sys {
			return fmt.Errorf("guest path %s is a system folder: pick a folder below it", g)
		}
	}
	for _, sys := range []string{"/dev/", "/proc/", "/sys/", "/run/", "/etc/", "/usr/", "/bin/", "/sbin/", "/lib/", "/boot/", "/var/lib/paddock"} {
		if strings.HasPrefix(g+"/", sys) {
			return fmt.Errorf("guest path %s is inside the system folder %s", g, strings.TrimSuffix(sys, "/"))
		}
	}
	return nil
}
