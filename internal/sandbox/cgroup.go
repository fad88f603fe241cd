package sandbox

import (
	"errors"
	"fmt"
	"os"

	"github.com/paddock-dev/paddock/internal/cgroup"
	"github.com/paddock-dev/paddock/internal/store"
)

// Group is what inspect shows of a sandbox's host cgroup.
type Group struct {
	cgroup.Record
	// Usage is the group's current use, while the sandbox runs.
	Usage *cgroup.Usage `json:"usage,omitempty"`
}

// group reads the host cgroup record of the sandbox at l and, when its
// group exists, its use; nil when the sandbox has not run since it last
// stopped cleanly (the supervisor removes the group and its record).
func group(l store.Layout) *Group {
	var rec cgroup.Record
	if err := store.ReadJSON(l.Cgroup(), &rec); err != nil {
		return nil
	}
	g := &Group{Record: rec}
	if rec.Driver != "" {
		if u, err := cgroup.ReadUsage(rec); err == nil {
			g.Usage = &u
		}
	}
	return g
}

// removeGroup deletes the host cgroup of the sandbox at l (a crashed
// supervisor's is left behind) and its record. The sandbox's processes
// must be gone.
func removeGroup(l store.Layout) error {
	var rec cgroup.Record
	err := store.ReadJSON(l.Cgroup(), &rec)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := cgroup.Remove(rec); err != nil {
		return fmt.Errorf("%w (remove it by hand with rmdir once empty)", err)
	}
	return os.Remove(l.Cgroup())
}
