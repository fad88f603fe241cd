package guest

import (
	"context"

	"golang.org/x/sys/unix"

	agentv1 "github.com/paddock-dev/paddock/api/agent/v1"
)

// Ping answers with the agent's version, the guest's boot-time clock and
// its kernel release.
func (a *Agent) Ping(context.Context, *agentv1.PingRequest) (*agentv1.PingResponse, error) {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts)
	return &agentv1.PingResponse{Version: a.Version, UptimeNs: ts.Nano(), Kernel: kernelRelease()}, nil
}
