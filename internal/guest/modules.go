package guest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// ModuleListFile lists, one per line and in dependency order, the kernel
// modules the initramfs carries, as paths relative to /lib/modules/KVER.
const ModuleListFile = "/etc/paddock/modules"

// ParseModuleList reads a module list: one relative path per line, blank
// lines and lines starting with # ignored. Absolute paths and paths that
// climb out of the modules directory are errors.
func ParseModuleList(r io.Reader) ([]string, error) {
	var mods []string
	var errs []error
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if !filepath.IsLocal(line) {
			errs = append(errs, fmt.Errorf("line %d: %q is not a path inside the modules directory", n, line))
			continue
		}
		mods = append(mods, line)
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, err)
	}
	return mods, errors.Join(errs...)
}

// loadModules loads every module in listFile from modDir with finit_module.
// A missing list means there is nothing to load; a module that is already
// loaded (EEXIST) is fine.
func loadModules(listFile, modDir string) (int, error) {
	f, err := os.Open(listFile)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	defer f.Close()
	mods, err := ParseModuleList(f)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", listFile, err)
	}
	loaded := 0
	for _, m := range mods {
		if err := loadModule(filepath.Join(modDir, m)); err != nil {
			return loaded, err
		}
		loaded++
	}
	return loaded, nil
}

func loadModule(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("load module: %w", err)
	}
	defer f.Close()
	err = unix.FinitModule(int(f.Fd()), "", 0)
	if err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("load module %s: %w", path, err)
	}
	return nil
}
