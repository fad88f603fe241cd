package guest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ext4ResizeFS is EXT4_IOC_RESIZE_FS, _IOW('f', 16, __u64): grow a mounted
// ext4 to the given number of blocks (what resize2fs does online).
const ext4ResizeFS = 0x40086610

// rootGrown is the size of the root block device at the last check; it
// lives in the agent's memory, so a VM restored from a saved state starts
// with the template VM's. mu guards size.
var rootGrown struct {
	mu   sync.Mutex
	size int64
}

// ownsRootDisk reports whether this is the guest's own agent (PID 1 on
// the machine's root), the only one that may grow a disk; an agent in a
// test is not.
func (a *Agent) ownsRootDisk() bool { return a.Root == "/" && os.Getpid() == 1 }

// growRoot grows the root file system to its block device when the host
// made the device bigger (create --disk: before the boot, or, after a
// restore, live with QMP block_resize). Configure calls it after every boot
// and restore; when the device has the size it had at the last check, it
// costs one read of a sysfs file.
func (a *Agent) growRoot() error {
	if !a.ownsRootDisk() {
		return nil
	}
	return growFS("/")
}

// growFS grows the ext4 mounted at mnt to the size of the block device it
// is on.
func growFS(mnt string) error {
	var st unix.Stat_t
	if err := unix.Stat(mnt, &st); err != nil {
		return fmt.Errorf("grow %s: %w", mnt, err)
	}
	sys := fmt.Sprintf("/sys/dev/block/%d:%d/", unix.Major(st.Dev), unix.Minor(st.Dev))
	b, err := os.ReadFile(sys + "size")
	if err != nil {
		return fmt.Errorf("grow %s: its device's size: %w", mnt, err)
	}
	sectors, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return fmt.Errorf("grow %s: its device's size %q: %w", mnt, b, err)
	}
	size := sectors * 512
	rootGrown.mu.Lock()
	defer rootGrown.mu.Unlock()
	if size == rootGrown.size {
		return nil
	}
	dev, err := deviceNode(sys)
	if err != nil {
		return fmt.Errorf("grow %s: %w", mnt, err)
	}
	blocks, blockSize, err := ext4Blocks(dev)
	if err != nil {
		return fmt.Errorf("grow %s: %w", mnt, err)
	}
	if want := uint64(size) / blockSize; want > blocks {
		if err := resizeExt4(mnt, want); err != nil {
			return fmt.Errorf("grow %s from %d to %d blocks of %d bytes: %w", mnt, blocks, want, blockSize, err)
		}
	}
	rootGrown.size = size
	return nil
}

// deviceNode is the /dev node of the block device whose sysfs folder is
// sys (its uevent's DEVNAME; devtmpfs makes the node).
func deviceNode(sys string) (string, error) {
	b, err := os.ReadFile(sys + "uevent")
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if name, ok := strings.CutPrefix(line, "DEVNAME="); ok && name != "" && !strings.Contains(name, "..") {
			return "/dev/" + name, nil
		}
	}
	return "", fmt.Errorf("no DEVNAME in %suevent", sys)
}

// ext4Blocks reads the block count and block size from the superblock of
// the ext4 on dev. A mounted ext4 keeps its superblock in the device's
// page cache, which a buffered read shares, so the count is current.
func ext4Blocks(dev string) (blocks, blockSize uint64, err error) {
	f, err := os.Open(dev)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sb := make([]byte, 1024)
	if _, err := f.ReadAt(sb, 1024); err != nil {
		return 0, 0, fmt.Errorf("read the superblock of %s: %w", dev, err)
	}
	return parseExt4Super(sb)
}

// parseExt4Super reads the block count and size from an ext4 superblock
// (the 1,024 bytes at offset 1,024 of the device).
func parseExt4Super(sb []byte) (blocks, blockSize uint64, err error) {
	const (
		magicOff     = 0x38
		blocksLoOff  = 0x04
		logBlockOff  = 0x18
		incompatOff  = 0x60
		blocksHiOff  = 0x150
		incompat64   = 0x80
		ext4Magic    = 0xEF53
		maxLogBlocks = 6 // 64 KiB
	)
	if len(sb) < 1024 || binary.LittleEndian.Uint16(sb[magicOff:]) != ext4Magic {
		return 0, 0, errors.New("not an ext4 file system")
	}
	le := binary.LittleEndian
	blocks = uint64(le.Uint32(sb[blocksLoOff:]))
	if le.Uint32(sb[incompatOff:])&incompat64 != 0 {
		blocks |= uint64(le.Uint32(sb[blocksHiOff:])) << 32
	}
	log := le.Uint32(sb[logBlockOff:])
	if log > maxLogBlocks {
		return 0, 0, fmt.Errorf("ext4 superblock with a block size of 1 KiB << %d", log)
	}
	return blocks, 1024 << log, nil
}

// resizeExt4 grows the ext4 mounted at mnt to blocks blocks, online.
func resizeExt4(mnt string, blocks uint64) error {
	fd, err := unix.Open(mnt, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), ext4ResizeFS, uintptr(unsafe.Pointer(&blocks))); errno != 0 {
		return fmt.Errorf("EXT4_IOC_RESIZE_FS: %w", errno)
	}
	return nil
}
