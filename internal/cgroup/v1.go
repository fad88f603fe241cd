package cgroup

import (
	"errors"
	"fmt"
	"os"
	"path"

	"github.com/containerd/cgroups/v3/cgroup1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// hierarchyV1 is the v1 controllers a group uses; the others (devices,
// freezer, blkio, cpuset...) are left alone.
func hierarchyV1() ([]cgroup1.Subsystem, error) {
	return []cgroup1.Subsystem{
		cgroup1.NewCpu(Root), cgroup1.NewCpuacct(Root), cgroup1.NewMemory(Root), cgroup1.NewPids(Root),
	}, nil
}

// recordPath turns a record's per-controller paths into the library's Path.
func recordPath(paths map[string]string) cgroup1.Path {
	return func(n cgroup1.Name) (string, error) {
		p, ok := paths[string(n)]
		if !ok {
			return "", cgroup1.ErrControllerNotActive
		}
		return p, nil
	}
}

// pathsV1 is sandbox name's group in each v1 controller, nested under the
// calling process's own group there (so the limits of whatever runs
// paddock still hold): /sys/fs/cgroup/memory/<own>/paddock/<name>.
func pathsV1(name string) (map[string]string, error) {
	own, err := cgroup1.ParseCgroupFile("/proc/self/cgroup")
	if err != nil {
		return nil, err
	}
	paths := map[string]string{}
	for _, c := range v1Controllers {
		if _, err := os.Stat(path.Join(Root, c)); err != nil {
			continue // not mounted on this host
		}
		paths[c] = groupPath(base(own[c]), name)
	}
	if _, ok := paths["memory"]; !ok {
		return nil, errors.New("the v1 memory controller is not mounted")
	}
	return paths, nil
}

func resourcesV1(l Limits) *specs.LinuxResources {
	quota, period, mem := l.CPUQuotaUs, l.CPUPeriodUs, l.MemoryBytes
	return &specs.LinuxResources{
		CPU:    &specs.LinuxCPU{Quota: &quota, Period: &period},
		Memory: &specs.LinuxMemory{Limit: &mem},
		Pids:   &specs.LinuxPids{Limit: &l.Pids},
	}
}

func joinV1(name string, l Limits, pid int) (Record, error) {
	paths, err := pathsV1(name)
	if err != nil {
		return Record{}, err
	}
	rec := Record{Driver: DriverV1, Paths: paths, Limits: l}
	opt := cgroup1.WithHiearchy(hierarchyV1)
	if old, err := cgroup1.Load(recordPath(paths), opt); err == nil {
		// A crashed run's group: start afresh when nothing is left in it.
		old.Delete()
	}
	cg, err := cgroup1.New(recordPath(paths), resourcesV1(l), opt)
	if err != nil {
		return Record{}, fmt.Errorf("make cgroup %s: %w", rec.describe(), err)
	}
	if err := cg.Add(cgroup1.Process{Pid: pid}); err != nil {
		cg.Delete()
		return Record{}, fmt.Errorf("join cgroup %s: %w", rec.describe(), err)
	}
	return rec, nil
}

func removeV1(rec Record) error {
	opt := cgroup1.WithHiearchy(hierarchyV1)
	cg, err := cgroup1.Load(recordPath(rec.Paths), opt)
	if errors.Is(err, cgroup1.ErrCgroupDeleted) {
		return nil
	}
	if err != nil {
		return err
	}
	parents := map[string]string{}
	for c, p := range rec.Paths {
		parents[c] = path.Dir(p)
	}
	parent, perr := cgroup1.Load(recordPath(parents), opt)
	move := func() {
		if perr == nil {
			cg.MoveTo(parent)
		}
	}
	procs := func() (int, error) {
		n := 0
		for _, c := range v1Controllers {
			p, err := cg.Processes(cgroup1.Name(c), true)
			if err != nil && !errors.Is(err, os.ErrNotExist) {
				return 0, err
			}
			n += len(p)
		}
		return n, nil
	}
	if err := drain(move, procs); err != nil {
		return fmt.Errorf("remove cgroup %s: %w", rec.describe(), err)
	}
	if err := cg.Delete(); err != nil {
		return fmt.Errorf("remove cgroup %s: %w", rec.describe(), err)
	}
	return nil
}
