package guest

import (
	"log/slog"
	"sync"
	"time"

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

	execs execRegistry

	mu          sync.Mutex
	defaultUser string   // guarded by mu; set by Configure
	shares      []string // guarded by mu; mount points Configure mounted
	// network is the interface configuration last applied (guarded by mu).
	network *agentv1.Network
	// user is the default user last ensured (guarded by mu).
	user *agentv1.User
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

// execRegistry maps exec ids to running executions.
//
// Invariant: an id is present from just after its process started until its
// Exec call returns; changed is closed and replaced whenever an id is added,
// so waiters re-check.
type execRegistry struct {
	mu      sync.Mutex
	byID    map[string]*execution // guarded by mu
	changed chan struct{}         // guarded by mu
}

func (r *execRegistry) add(id string, e *execution) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.byID == nil {
		r.byID = map[string]*execution{}
	}
	if _, dup := r.byID[id]; dup {
		return false
	}
	r.byID[id] = e
	if r.changed != nil {
		close(r.changed)
		r.changed = nil
	}
	return true
}

func (r *execRegistry) remove(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.byID, id)
}

// get returns the execution with id, waiting up to wait for it to appear
// (Exec and the calls addressed to it race).
func (r *execRegistry) get(id string, wait time.Duration) *execution {
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		e := r.byID[id]
		if e != nil || wait <= 0 {
			r.mu.Unlock()
			return e
		}
		if r.changed == nil {
			r.changed = make(chan struct{})
		}
		ch := r.changed
		r.mu.Unlock()
		select {
		case <-ch:
		case <-deadline.C:
			r.mu.Lock()
			e := r.byID[id]
			r.mu.Unlock()
			return e
		}
	}
}
