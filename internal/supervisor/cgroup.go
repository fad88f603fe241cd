package supervisor

import (
	"os"
	"time"

	"github.com/paddock-dev/paddock/internal/cgroup"
	"github.com/paddock-dev/paddock/internal/store"
)

// joinGroup puts the supervisor in its sandbox's host cgroup before it
// starts anything, so QEMU (and a template VM it boots for a saved state)
// is born in it: QEMU later runs as another uid in a user namespace and
// the supervisor drops its capabilities, after which neither could be
// moved. Without usable cgroups the sandbox runs unlimited, with a
// warning, and the record says why.
func (s *sup) joinGroup() {
	t0 := time.Now()
	rec, err := cgroup.Join(s.cfg.Name, cgroup.For(s.cfg.CPUs, s.cfg.MemoryBytes), os.Getpid())
	d := time.Since(t0).Round(10 * time.Microsecond)
	if err != nil {
		s.log.Warn("no host cgroup: the sandbox runs without host CPU, memory and pids limits", "reason", err)
	} else {
		s.log.Info("host cgroup", "driver", rec.Driver, "paths", rec.Paths, "cpus", rec.Limits.CPUs(),
			"memory_bytes", rec.Limits.MemoryBytes, "pids", rec.Limits.Pids, "duration", d)
	}
	s.group = rec
	if err := store.WriteJSON(s.layout.Cgroup(), rec); err != nil {
		s.log.Warn("record the host cgroup", "err", err)
	}
}

// leaveGroup removes the group once QEMU is gone: the supervisor moves
// itself to the parent and deletes it (as root without capabilities it
// still owns those files). A crashed supervisor's group is removed by
// the next start or by rm.
func (s *sup) leaveGroup() {
	if s.group.Driver == "" {
		return
	}
	if err := cgroup.Remove(s.group); err != nil {
		s.log.Warn("remove the host cgroup", "err", err)
		return
	}
	os.Remove(s.layout.Cgroup())
}
