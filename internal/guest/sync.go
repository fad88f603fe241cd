package guest

import (
	"context"
	"os"
	"strconv"
	"strings"

	agentv1 "github.com/paddock-dev/paddock/api/agent/v1"
	"github.com/paddock-dev/paddock/internal/wsync"
)

// Sync keeps the copy of a host folder on this disk in step with the
// host's (internal/wsync). The stream lasts until the host ends it or the
// connection goes.
func (a *Agent) Sync(ctx context.Context, stream agentv1.TTRPCAgent_SyncServer) error {
	raiseWatchLimit()
	return wsync.Guest(ctx, stream, a.Log.With("sync", true))
}

// raiseWatchLimit lets the agent watch every folder of a large workspace:
// the kernel's default depends on the guest's memory.
func raiseWatchLimit() {
	const want = 1 << 20
	const limit = "/proc/sys/fs/inotify/max_user_watches"
	if b, err := os.ReadFile(limit); err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && n >= want {
			return
		}
	}
	os.WriteFile(limit, []byte(strconv.Itoa(want)), 0o644)
}
