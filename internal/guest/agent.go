package guest

import (
	"log/slog"
	"sync"

	agentv1 "github.com/paddock-dev/paddock/api/agent/v1"
)

// Agent implements agentv1.TTRPCAgentService.
type Agent struct {
	Version string
	Log     *slog.Logger
	Users   Users   // account files; Root "/" in the guest
	Reaper  *Reaper // owns every child's exit status
	// Root prefixes the files Configure writes (/etc/hostname, ...): "/" in
	// the guest.
	Root string
	// System performs the calls that change the whole machine (hostname,
	// clock, RNG, mounts, power). The guest uses HostSystem; tests a fake.
	System System
	// Docker is the guest's dockerd as StartDocker runs it; nil without
	// one.
	Docker *Dockerd

	procs procTable   // processes started by Exec, and their streams
	files fileStreams // ReadFile streams, paced by AckOutput

	mu          sync.Mutex
	defaultUser string // guarded by mu; set by Configure
	// network is the interface configuration last applied (guarded by mu).
	network *agentv1.Network
	// user is the default user last ensured (guarded by mu).
	user *agentv1.User
	// trusted names the CAs the last Configure installed (their
	// certificates' SHA-256), nil before one gave any; trustEnv is the
	// environment that points every exec at them (trust.go). Both
	// guarded by mu.
	trusted  []string
	trustEnv []string
	// copies counts the CA copies Configure left running (trust.go).
	copies sync.WaitGroup
	// detachToken is set by Detach and written to the console once the
	// host session ends (guarded by mu).
	detachToken string
}

// NewAgent returns an agent for the machine's own root that changes it
// through sys.
func NewAgent(version string, log *slog.Logger, reaper *Reaper, sys System) *Agent {
	return &Agent{
		Version: version,
		Log:     log,
		Users:   Users{Root: "/"},
		Reaper:  reaper,
		Root:    "/",
		System:  sys,
	}
}
