package supervisor

import (
	"errors"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/paddock-dev/paddock/internal/store"
)

// copySparse copies src to dst, skipping src's holes (SEEK_DATA/SEEK_HOLE),
// so a mostly empty RAM file copies in the time its data takes.
func copySparse(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer out.Close()
	if err := out.Truncate(st.Size()); err != nil {
		return err
	}
	fd := int(in.Fd())
	var off int64
	for off < st.Size() {
		data, err := unix.Seek(fd, off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			break // only a hole remains
		}
		if err != nil {
			return err
		}
		hole, err := unix.Seek(fd, data, unix.SEEK_HOLE)
		if err != nil {
			return err
		}
		if _, err := in.Seek(data, io.SeekStart); err != nil {
			return err
		}
		if _, err := out.Seek(data, io.SeekStart); err != nil {
			return err
		}
		if _, err := io.CopyN(out, in, hole-data); err != nil {
			return err
		}
		off = hole
	}
	return out.Close()
}

// linkOrCopy hard-links src to dst, copying when they are on different
// file systems.
func linkOrCopy(src, dst string) error {
	os.Remove(dst)
	if err := os.Link(src, dst); err == nil {
		return nil
	}
	return copySparse(src, dst)
}

// copyDiskPair copies a sandbox disk (DiskName) and its base (BaseDiskName,
// linked, if there is one) from directory src to dst. The disk names its
// base by a relative name, so the pair works in its new place.
func copyDiskPair(src, dst string) error {
	base := filepath.Join(src, store.BaseDiskName)
	if _, err := os.Stat(base); err == nil {
		if err := linkOrCopy(base, filepath.Join(dst, store.BaseDiskName)); err != nil {
			return err
		}
	}
	return copySparse(filepath.Join(src, store.DiskName), filepath.Join(dst, store.DiskName))
}
