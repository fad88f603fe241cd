package guest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	agentv1 "github.com/paddock-dev/paddock/api/agent/v1"
)

// Quiesce syncs and unmounts the shares Configure mounted, so that QEMU can
// save the VM. If any process holds a file under a share, nothing is
// unmounted and the error names the processes.
func (a *Agent) Quiesce(context.Context, *agentv1.QuiesceRequest) (*agentv1.QuiesceResponse, error) {
	a.System.Sync()
	a.mu.Lock()
	defer a.mu.Unlock()
	var busy []string
	for _, share := range a.shares {
		procs := FindBusy(a.path("/proc"), share, os.Getpid())
		if len(procs) == 0 {
			continue
		}
		names := make([]string, len(procs))
		for i, p := range procs {
			names[i] = p.String()
		}
		busy = append(busy, fmt.Sprintf("workspace %s is in use by %s", share, strings.Join(names, ", ")))
	}
	if len(busy) > 0 {
		return nil, status.Errorf(codes.FailedPrecondition, "%s: stop them (or their exec) and try again", strings.Join(busy, "; "))
	}
	var errs []error
	for _, share := range slices.Clone(a.shares) {
		if err := a.System.Unmount(share); err != nil {
			errs = append(errs, err)
			continue
		}
		a.shares = slices.DeleteFunc(a.shares, func(s string) bool { return s == share })
	}
	if err := errors.Join(errs...); err != nil {
		return nil, status.Errorf(codes.FailedPrecondition, "quiesce: %v", err)
	}
	a.primeRootFS()
	a.System.Sync()
	a.Log.Info("quiesced")
	return &agentv1.QuiesceResponse{}, nil
}

// primeDirs are the usual parents of a workspace folder (a sandbox mounts
// its workspace at the host's path, and makes that directory first).
var primeDirs = []string{"/", "/tmp", "/home", "/root"}

// primeRootFS makes and removes a directory in each of primeDirs, so that
// a VM saved now has ext4's block allocator state for their block groups
// (buddy caches, bitmaps) in memory. A clone of it then makes its
// workspace's directory without reading that state from disk, and under
// TCG without translating the code that reads it: ~1,400 translated blocks,
// ~1 MiB of each idle clone's host memory (docs/BENCHMARKS.md). Errors
// are ignored: a parent that is missing or read-only is simply not primed.
func (a *Agent) primeRootFS() {
	for _, d := range primeDirs {
		p := filepath.Join(a.path(d), ".paddock-prime")
		if os.Mkdir(p, 0o700) == nil {
			os.Remove(p)
		}
	}
}
