package guest

import (
	"context"
	"os"
	"path/filepath"

	agentv1 "github.com/paddock-dev/paddock/api/agent/v1"
)

// Quiesce prepares the guest for a VM save: it primes the root file
// system's allocator state (primeRootFS) and syncs the file systems, so
// the saved memory and the disk agree.
func (a *Agent) Quiesce(context.Context, *agentv1.QuiesceRequest) (*agentv1.QuiesceResponse, error) {
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
