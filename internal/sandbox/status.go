package sandbox

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"syscall"
	"time"

	supervisorv1 "github.com/paddock-dev/paddock/api/supervisor/v1"
	"github.com/paddock-dev/paddock/internal/store"
)

// State is where a sandbox is in its life: one word of a fixed
// vocabulary. Info.Reason says why when the word alone does not.
type State string

// The states, as status works them out from facts.
const (
	StateCreated       State = "created"       // made, never started
	StateStarting      State = "starting"      // its supervisor is booting the VM
	StateRunning       State = "running"       // the VM runs and answers
	StatePaused        State = "paused"        // the VM is paused (paddock pause)
	StateCheckpointing State = "checkpointing" // paused while a checkpoint is saved
	StateStopped       State = "stopped"       // ended cleanly, or by a host reboot (Reason says)
	StateUnresponsive  State = "unresponsive"  // a live supervisor that does not answer
	StateBroken        State = "broken"        // ended or left in a way that needs a look (Reason says)
)

// Info is what ls and inspect show of a sandbox.
type Info struct {
	Name          string    `json:"name"`
	State         State     `json:"state"`
	Reason        string    `json:"reason,omitempty"` // a sentence: why, and what to do
	Template      string    `json:"template"`
	Workspace     string    `json:"workspace"`
	Created       time.Time `json:"created"`
	CPUs          int       `json:"cpus"`
	MemoryBytes   int64     `json:"memory_bytes"`
	Accel         string    `json:"accel"` // the one in use while running, else the requested one
	SupervisorPid int       `json:"supervisor_pid,omitempty"`
	QEMUPid       int       `json:"qemu_pid,omitempty"`
	DiskBytes     int64     `json:"disk_bytes"` // host blocks used by the sandbox's own disk overlay
	AgentVersion  string    `json:"agent_version,omitempty"`
	Boot          string    `json:"boot,omitempty"` // how the running VM started: cold, restore or fork
	From          string    `json:"from,omitempty"` // the checkpoint it was forked from`
	// Deadline is when its supervisor removes it (create --ttl, the API's
	// timeout); nil for never.
	Deadline *time.Time        `json:"deadline,omitempty"`
	Metadata map[string]string `json:"metadata,omitempty"`
	Owner    string            `json:"owner,omitempty"` // the API key that made it
	// Pool names the template whose warm pool (paddock serve --warm)
	// holds this sandbox idle, unclaimed.
	Pool string `json:"pool,omitempty"`
	// Cgroup is the host cgroup its supervisor and QEMU run in, with its
	// limits and current use; nil when it has none (stopped).
	Cgroup *Group `json:"cgroup,omitempty"`
	// AccessToken guards the sandbox's services in the API; never shown.
	AccessToken string `json:"-"`
	// Env is every exec's environment (KEY=VALUE); never shown, it may
	// hold secrets.
	Env []string `json:"-"`
	Dir string   `json:"dir"`
	// Secrets are the host-side secrets bound to it (Inspect only).
	Secrets []BoundSecret `json:"secrets,omitempty"`
}

// Summary is the state and, when there is one, the reason, for a person:
// "broken: the supervisor died (killed?); see paddock logs web".
func (i Info) Summary() string {
	if i.Reason == "" {
		return string(i.State)
	}
	return string(i.State) + ": " + i.Reason
}

// List returns every sandbox, sorted by name.
func (m *Manager) List() ([]Info, error) {
	entries, err := os.ReadDir(m.Home.SandboxesDir())
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []Info
	for _, e := range entries {
		if !e.IsDir() || store.ValidateName(e.Name()) != nil {
			continue
		}
		out = append(out, m.status(e.Name()))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Inspect returns one sandbox's facts.
func (m *Manager) Inspect(name string) (Info, error) {
	if err := store.ValidateName(name); err != nil {
		return Info{}, err
	}
	if _, err := os.Stat(m.Home.Sandbox(name).Dir); err != nil {
		return Info{}, fmt.Errorf("no such sandbox %q (see paddock ls)", name)
	}
	info := m.status(name)
	var cfg store.SandboxConfig
	if store.ReadJSON(m.Home.Sandbox(name).Config(), &cfg) == nil {
		info.Secrets = m.BoundSecrets(cfg)
	}
	return info, nil
}

// status derives a sandbox's status from facts: its config, whether a
// supervisor holds its run lock and answers, and how its last run ended.
func (m *Manager) status(name string) Info {
	l := m.Home.Sandbox(name)
	info := Info{Name: name, Dir: l.Dir, DiskBytes: allocated(l.Disk())}
	var cfg store.SandboxConfig
	if err := store.ReadJSON(l.Config(), &cfg); err != nil {
		info.State, info.Reason = StateBroken, "incomplete create (no config); remove it with paddock rm "+name
		return info
	}
	info.Template, info.Workspace, info.Created = cfg.Template, cfg.Workspace, cfg.Created
	info.Deadline, info.Metadata, info.Owner, info.AccessToken = cfg.Deadline, cfg.Metadata, cfg.Owner, cfg.AccessToken
	info.CPUs, info.MemoryBytes, info.Accel, info.From = cfg.CPUs, cfg.MemoryBytes, cfg.Accel, cfg.From
	info.Pool, info.Env = cfg.Pool, cfg.Env
	info.Cgroup = group(l)

	if supervisorAlive(l) {
		if pf, err := store.ReadPidFile(l.SupervisorPid()); err == nil {
			info.SupervisorPid = pf.Pid
		}
		c, err := dialSocket(l.Socket())
		if err == nil {
			defer c.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			resp, err := c.Supervisor.Info(ctx, &supervisorv1.InfoRequest{})
			if err == nil {
				info.State, info.Reason = fromQEMU(resp.State, name)
				info.QEMUPid = int(resp.QemuPid)
				info.Accel = resp.Accel
				info.AgentVersion = resp.AgentVersion
				info.Boot = resp.Boot
				return info
			}
		}
		if _, err := os.Stat(l.Socket()); err != nil {
			info.State = StateStarting
		} else {
			info.State, info.Reason = StateUnresponsive, "the supervisor does not answer; see paddock logs "+name
		}
		return info
	}
	// No supervisor. QEMU dies with it, but check: an orphan must show.
	if pf, err := store.ReadPidFile(l.QEMUPid()); err == nil && pf.Alive() {
		info.QEMUPid = pf.Pid
		info.State, info.Reason = StateBroken, fmt.Sprintf("orphan qemu (pid %d) without a supervisor; paddock rm -f %s cleans it", pf.Pid, name)
		return info
	}
	var last store.ExitRecord
	lastErr := store.ReadJSON(l.LastExit(), &last)
	pf, pidErr := store.ReadPidFile(l.SupervisorPid())
	switch {
	case lastErr == nil && last.Clean:
		info.State = StateStopped
	case lastErr == nil:
		info.State, info.Reason = StateBroken, last.Reason
	case pidErr == nil && pf.BootID != store.BootID():
		info.State, info.Reason = StateStopped, "the host rebooted"
	case pidErr == nil:
		info.State, info.Reason = StateBroken, "the supervisor died (killed?); see paddock logs "+name
	default:
		info.State = StateCreated
	}
	return info
}

// fromQEMU maps the supervisor's answer for sandbox name (QEMU's
// query-status word, or "checkpointing") to a state, with QEMU's word as
// the reason where the state alone would hide it.
func fromQEMU(s, name string) (State, string) {
	switch s {
	case "running":
		return StateRunning, ""
	case "paused":
		return StatePaused, ""
	case "checkpointing":
		return StateCheckpointing, ""
	case "prelaunch", "inmigrate", "restore-vm":
		return StateStarting, "QEMU reports " + s
	case "suspended", "finish-migrate", "postmigrate", "save-vm":
		return StatePaused, "QEMU reports " + s
	}
	// internal-error, io-error, guest-panicked, shutdown, watchdog, ...
	return StateBroken, "QEMU reports " + s + "; see paddock logs " + name
}

// allocated is the host disk space a file uses (blocks, not apparent size).
func allocated(path string) int64 {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return 0
	}
	return st.Blocks * 512
}
