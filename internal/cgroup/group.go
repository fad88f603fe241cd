package cgroup

import (
	"errors"
	"fmt"
	"os"
	"path"
	"strings"
	"time"

	cgroups "github.com/containerd/cgroups/v3"
)

// Root is where the cgroup file systems are mounted.
const Root = "/sys/fs/cgroup"

// parentName is the folder that holds every sandbox's group.
const parentName = "paddock"

// DisableEnv turns the groups off when set to "off" in the environment
// of the command that starts a sandbox (for benchmarks and for hosts whose
// cgroups are managed by something else).
const DisableEnv = "PADDOCK_CGROUP"

// Drivers: how a group was made.
const (
	DriverV1      = "cgroupfs-v1" // directly, one folder per v1 controller
	DriverV2      = "cgroupfs-v2" // directly, one folder in the unified tree
	DriverSystemd = "systemd"     // a transient scope unit, on v2
)

// v1Controllers are the v1 hierarchies a group is made in.
var v1Controllers = []string{"cpu", "cpuacct", "memory", "pids"}

// Record says where a sandbox's group is and what bounds it; the
// supervisor writes it to the sandbox's folder, and rm, inspect and stats
// read it. A sandbox that runs without a group has only Unlimited.
type Record struct {
	Driver string `json:"driver,omitempty"`
	// Paths are the group's paths inside each hierarchy, by controller
	// name on v1 and under "unified" on v2 (e.g. /paddock/web).
	Paths  map[string]string `json:"paths,omitempty"`
	Unit   string            `json:"unit,omitempty"` // the systemd scope
	Limits Limits            `json:"limits"`
	// Unlimited says why the sandbox runs without a group.
	Unlimited string `json:"unlimited,omitempty"`
}

// Dir is the group's folder for controller ctrl ("memory", "cpu"... on v1;
// any name on v2), or "" if the record has none.
func (r Record) Dir(ctrl string) string {
	if r.Driver == DriverV1 {
		p, ok := r.Paths[ctrl]
		if !ok {
			return ""
		}
		return path.Join(Root, ctrl, p)
	}
	p, ok := r.Paths["unified"]
	if !ok {
		return ""
	}
	return path.Join(Root, p)
}

// Disabled reports why groups are off by the caller's choice, or "".
func Disabled() string {
	if os.Getenv(DisableEnv) == "off" {
		return DisableEnv + "=off"
	}
	return ""
}

// Join makes the group of sandbox name with limits l and moves process pid
// into it (its later children are born in it). A group left by a run
// that crashed is removed first when empty, so counters start at zero.
func Join(name string, l Limits, pid int) (Record, error) {
	if reason := Disabled(); reason != "" {
		return Record{Unlimited: reason}, errors.New(reason)
	}
	var (
		rec Record
		err error
	)
	switch cgroups.Mode() {
	case cgroups.Legacy, cgroups.Hybrid:
		rec, err = joinV1(name, l, pid)
	case cgroups.Unified:
		if systemdRuns() && os.Geteuid() == 0 {
			rec, err = joinSystemd(name, l, pid)
			if err == nil {
				return rec, nil
			}
			// No bus or no permission: manage the tree directly.
		}
		rec, err = joinV2(name, l, pid)
	default:
		err = errors.New("no cgroup file system is mounted at " + Root)
	}
	if err != nil {
		return Record{Unlimited: err.Error()}, err
	}
	return rec, nil
}

// Remove deletes the group rec names. Processes still in it are moved to
// its parent first: the only ones left when a sandbox is removed are the
// caller itself (paddock rm started by a sandbox's deadline) or a
// supervisor leaving its own group on exit. A group already gone is not
// an error.
func Remove(rec Record) error {
	switch rec.Driver {
	case DriverV1:
		return removeV1(rec)
	case DriverV2:
		return removeV2(rec)
	case DriverSystemd:
		return removeSystemd(rec)
	}
	return nil
}

// drainTimeout bounds how long Remove waits for killed processes to leave
// a group: a QEMU that was just SIGKILLed is listed until the kernel has
// freed its memory.
const drainTimeout = 10 * time.Second

// drain moves what is in a group to its parent (move) and waits until
// procs reports it empty.
func drain(move func(), procs func() (int, error)) error {
	deadline := time.Now().Add(drainTimeout)
	for {
		move()
		n, err := procs()
		if err != nil || n == 0 {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d processes are still in it after %s", n, drainTimeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// systemdRuns reports whether systemd is the host's init (sd_booted).
func systemdRuns() bool {
	_, err := os.Lstat("/run/systemd/system")
	return err == nil
}

// base is the group under which a process in cgroup own makes its
// sandboxes' parent: its own group, less any sandbox group it is in (a
// paddock rm run by a sandbox's deadline runs in that sandbox's group).
func base(own string) string {
	own = path.Clean("/" + own)
	if i := strings.Index(own+"/", "/"+parentName+"/"); i >= 0 {
		own = own[:i]
	}
	if own == "" {
		return "/"
	}
	return own
}

// groupPath is sandbox name's group under base b.
func groupPath(b, name string) string { return path.Join(b, parentName, name) }

// describe is a one-line summary of rec for messages: its first path.
func (r Record) describe() string {
	if r.Unit != "" {
		return r.Unit
	}
	for _, c := range append([]string{"unified"}, v1Controllers...) {
		if p, ok := r.Paths[c]; ok {
			return p
		}
	}
	return fmt.Sprint(r.Paths)
}
