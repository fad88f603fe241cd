package cgroup

import (
	"errors"
	"fmt"
	"os"
	"path"
	"strings"

	cgroups "github.com/containerd/cgroups/v3"
	"github.com/containerd/cgroups/v3/cgroup2"
)

func resourcesV2(l Limits) *cgroup2.Resources {
	quota, period, mem := l.CPUQuotaUs, l.CPUPeriodUs, l.MemoryBytes
	return &cgroup2.Resources{
		CPU:    &cgroup2.CPU{Max: cgroup2.NewCPUMax(&quota, &period)},
		Memory: &cgroup2.Memory{Max: &mem},
		Pids:   &cgroup2.Pids{Max: l.Pids},
	}
}

// candidatesV2 is where a v2 group may go, best first: under the caller's
// own group (a delegated subtree keeps the caller's limits), then under
// the root. v2 lets a group hand controllers to its children only when no
// process sits in it, so the first fails when the caller's group holds
// processes, as it usually does.
func candidatesV2(name string) []string {
	var out []string
	if _, own, err := cgroups.ParseCgroupFileUnified("/proc/self/cgroup"); err == nil && base(own) != "/" {
		out = append(out, groupPath(base(own), name))
	}
	return append(out, groupPath("/", name))
}

func joinV2(name string, l Limits, pid int) (Record, error) {
	var errs []error
	for _, g := range candidatesV2(name) {
		if old, err := cgroup2.Load(g); err == nil {
			old.Delete() // a crashed run's group, when empty
		}
		m, err := cgroup2.NewManager(Root, g, resourcesV2(l))
		if err != nil {
			errs = append(errs, fmt.Errorf("make cgroup %s: %w", g, err))
			continue
		}
		if err := m.AddProc(uint64(pid)); err != nil {
			m.Delete()
			errs = append(errs, fmt.Errorf("join cgroup %s: %w", g, err))
			continue
		}
		return Record{Driver: DriverV2, Paths: map[string]string{"unified": g}, Limits: l}, nil
	}
	return Record{}, errors.Join(errs...)
}

// moveOut moves every process in group g to its parent and waits until
// g is empty.
func moveOut(g string) error {
	m, err := cgroup2.Load(g)
	if err != nil {
		return err
	}
	parent, perr := cgroup2.Load(path.Dir(g))
	move := func() {
		if perr == nil {
			m.MoveTo(parent)
		}
	}
	procs := func() (int, error) {
		p, err := m.Procs(true)
		return len(p), err
	}
	return drain(move, procs)
}

func removeV2(rec Record) error {
	g := rec.Paths["unified"]
	if _, err := os.Stat(path.Join(Root, g)); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err := moveOut(g); err != nil {
		return fmt.Errorf("remove cgroup %s: %w", g, err)
	}
	m, err := cgroup2.Load(g)
	if err != nil {
		return err
	}
	if err := m.Delete(); err != nil {
		return fmt.Errorf("remove cgroup %s: %w", g, err)
	}
	return nil
}

// scopeName is sandbox name's systemd scope unit.
func scopeName(name string) string { return parentName + "-" + name + ".scope" }

// joinSystemd asks systemd for a transient scope holding pid, in
// system.slice (the library's placement), with the limits as unit
// properties, as a container runtime with the systemd driver does.
func joinSystemd(name string, l Limits, pid int) (Record, error) {
	unit := scopeName(name)
	if _, err := cgroup2.NewSystemd("", unit, pid, resourcesV2(l)); err != nil {
		return Record{}, fmt.Errorf("make systemd scope %s: %w", unit, err)
	}
	g := "/system.slice/" + unit
	return Record{Driver: DriverSystemd, Paths: map[string]string{"unified": g}, Unit: unit, Limits: l}, nil
}

func removeSystemd(rec Record) error {
	g := rec.Paths["unified"]
	if _, err := os.Stat(path.Join(Root, g)); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	// Stopping the unit kills what is in it: take the caller out first.
	if err := moveOut(g); err != nil {
		return fmt.Errorf("stop systemd scope %s: %w", rec.Unit, err)
	}
	m, err := cgroup2.LoadSystemd("", rec.Unit)
	if err != nil {
		return err
	}
	if err := m.DeleteSystemd(); err != nil && !strings.Contains(err.Error(), "not loaded") {
		return fmt.Errorf("stop systemd scope %s: %w", rec.Unit, err)
	}
	return nil
}
