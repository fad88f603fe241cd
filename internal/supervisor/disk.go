package supervisor

import (
	"github.com/paddock-dev/paddock/internal/store"
	"github.com/paddock-dev/paddock/internal/vm/qemu"
)

// growDisk gives the VM's root disk the sandbox's size (create --disk)
// when it is smaller: a restored or forked VM was saved with its
// template's (or its checkpoint's) disk, and a cold boot's overlay may be
// older than the size. QMP block_resize grows the qcow2 overlay live and
// the guest's virtio-blk driver sees the new capacity; the agent grows the
// mounted ext4 to it in Configure, the next step (internal/guest/growfs.go).
// The overlay stays sparse: the host pays for what the guest writes.
func (s *sup) growDisk() error {
	if s.cfg.DiskBytes == 0 {
		return nil
	}
	if err := s.monitor.GrowDisk(qemu.RootNode, s.cfg.DiskBytes); err != nil {
		return err
	}
	s.log.Info("root disk", "size", store.FormatSize(s.cfg.DiskBytes))
	return nil
}
