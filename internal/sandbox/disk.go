package sandbox

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/paddock-dev/paddock/internal/store"
	"github.com/paddock-dev/paddock/internal/template"
)

// MinFreeSpace is the free space under PADDOCK_HOME below which create and
// start refuse: a sandbox's disk overlay, logs and sockets live there, and
// a host file system that fills up stops every sandbox on it (QEMU pauses
// a VM whose disk write fails with ENOSPC).
const MinFreeSpace = 1 << 30

// freeSpaceHelp says how to make room under PADDOCK_HOME.
const freeSpaceHelp = "remove sandboxes (paddock rm), checkpoints (paddock checkpoint rm) or templates (paddock template rm) you no longer need, or set PADDOCK_HOME to a larger file system"

// diskSize decides a sandbox's disk size: want is what --disk asked for (0:
// none), image the template's root image size (or the checkpoint's disk
// for a fork), free the bytes free under PADDOCK_HOME. It returns the
// size to record (0: the image's own) or why it is refused. A disk is
// never smaller than its image (the file system on it would be cut), and
// never bigger than the host could hold.
func diskSize(flag string, want, image, free int64) (int64, error) {
	switch {
	case want == 0:
		return 0, nil
	case want < image:
		return 0, fmt.Errorf("invalid --disk %s: smaller than the %s the root file system already has (a disk can only grow); use at least %s", flag, store.FormatSize(image), store.FormatSize(image))
	case want > free:
		return 0, fmt.Errorf("invalid --disk %s: only %s is free under PADDOCK_HOME, and a guest could fill it all; ask for less, or %s", flag, roughSize(free), freeSpaceHelp)
	case want == image:
		return 0, nil
	}
	// Whole MiB: qcow2 sizes are sector multiples, ext4's whole blocks.
	return (want + 1<<20 - 1) &^ (1<<20 - 1), nil
}

// checkFreeSpace refuses when less than MinFreeSpace is free under home.
func checkFreeSpace(home store.Home) error {
	free, err := freeBytes(string(home))
	if err != nil {
		return fmt.Errorf("free space under %s: %w", home, err)
	}
	return lowSpace(string(home), free)
}

// lowSpace is checkFreeSpace's decision.
func lowSpace(home string, free int64) error {
	if free >= MinFreeSpace {
		return nil
	}
	return fmt.Errorf("only %s is free under %s, below the %s a sandbox needs: %s", roughSize(free), home, store.FormatSize(MinFreeSpace), freeSpaceHelp)
}

// freeBytes is what an unprivileged user may still write on the file
// system that holds path, or would hold it once made (statfs's available
// blocks of its nearest existing folder).
func freeBytes(path string) (int64, error) {
	var st syscall.Statfs_t
	for {
		err := syscall.Statfs(path, &st)
		if err == nil {
			return int64(st.Bavail) * st.Bsize, nil
		}
		parent := filepath.Dir(path)
		if !errors.Is(err, syscall.ENOENT) || parent == path {
			return 0, err
		}
		path = parent
	}
}

// validateDisk parses --disk and decides the sandbox's disk size against
// its template's root image. A template that does not open is left for
// Create to report.
func (m *Manager) validateDisk(o CreateOptions, cfg *store.SandboxConfig) error {
	if o.Disk == "" {
		return nil
	}
	want, err := store.ParseSize(o.Disk)
	if err != nil {
		return fmt.Errorf("--disk: %w", err)
	}
	tpl, err := template.Open(string(m.Home), cfg.Template)
	if err != nil {
		return nil
	}
	fi, err := os.Stat(tpl.Rootfs)
	if err != nil {
		return nil
	}
	free, err := freeBytes(string(m.Home))
	if err != nil {
		return fmt.Errorf("--disk: free space under %s: %w", m.Home, err)
	}
	cfg.DiskBytes, err = diskSize(o.Disk, want, fi.Size(), free)
	return err
}

// roughSize writes a measured size for people: 54.5G, 300M.
func roughSize(n int64) string {
	switch {
	case n >= 1<<40:
		return strconv.FormatFloat(float64(n)/(1<<40), 'f', 1, 64) + "T"
	case n >= 1<<30:
		return strconv.FormatFloat(float64(n)/(1<<30), 'f', 1, 64) + "G"
	default:
		return strconv.FormatInt(n>>20, 10) + "M"
	}
}
