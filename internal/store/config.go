package store

import "time"

// SandboxConfig is a sandbox's settings, written once when it is created
// (config.json). Nothing here describes whether it runs: that is derived
// from live processes (see package sandbox).
type SandboxConfig struct {
	Name      string `json:"name"`
	Template  string `json:"template"`
	Workspace string `json:"workspace"` // absolute host path, synced with a copy at the same path in the guest; "" for none
	// Mounts are the other host folders synced into the guest (mount add).
	Mounts      []Mount  `json:"mounts,omitempty"`
	CPUs        int      `json:"cpus"`
	MemoryBytes int64    `json:"memory_bytes"`
	Env         []string `json:"env,omitempty"` // K=V for every exec
	Accel       string   `json:"accel"`         // requested: auto, kvm or tcg
	// Secrets names the host-side secrets bound to the sandbox (create
	// --secret): the guest holds their placeholders, and the forwarder
	// puts their values into requests for their hosts (internal/inject).
	Secrets []string `json:"secrets,omitempty"`
	// CACerts are extra certificate authorities the guest trusts (create
	// --ca, --trust-host-ca), PEM, beside the install's own authority.
	CACerts []string `json:"ca_certs,omitempty"`
	User    User     `json:"user"`
	// Cold boots the kernel instead of restoring the template's saved VM.
	Cold bool `json:"cold,omitempty"`
	// DiskBytes is the size of the root disk the guest sees (create
	// --disk); 0 is the template image's own size.
	DiskBytes int64 `json:"disk_bytes,omitempty"`
	// NoShareMemory restores from a full memory image into private RAM
	// instead of mapping the template's RAM file copy-on-write: no pages
	// shared with other sandboxes (no cross-sandbox side channel through
	// page dedup), at the cost of memory and a slower start.
	NoShareMemory bool `json:"no_share_memory,omitempty"`
	// From names the checkpoint this sandbox was forked from; its first
	// boot restores that checkpoint.
	From string `json:"from,omitempty"`
	// TemplateBuild identifies the template build the disk was made on
	// (recipe hash and build time); a rebuilt template cannot carry an
	// old overlay.
	TemplateBuild string `json:"template_build,omitempty"`
	// MachineID is the guest's /etc/machine-id, unique per sandbox.
	MachineID string    `json:"machine_id,omitempty"`
	Created   time.Time `json:"created"`
	// Deadline, when set, is when the sandbox's supervisor removes it
	// (create --ttl, the API's timeout). The supervisor rewrites it when
	// it is moved.
	Deadline *time.Time `json:"deadline,omitempty"`
	// Metadata is the API caller's key/value labels.
	Metadata map[string]string `json:"metadata,omitempty"`
	// Owner names the API key that created the sandbox ("" for the CLI).
	Owner string `json:"owner,omitempty"`
	// AutoPause makes the deadline pause the sandbox (memory kept)
	// instead of removing it; a resume may set a new deadline.
	AutoPause bool `json:"auto_pause,omitempty"`
	// AccessToken is what the API's callers of the sandbox's own services
	// (E2B's envd: commands) must show (X-Access-Token).
	AccessToken string `json:"access_token,omitempty"`
	// Pool, when set, marks an idle member of paddock serve's warm pool
	// (--warm) of that template: no owner yet, a closed network. An API
	// create claims it (the supervisor's Claim), which clears the mark.
	Pool string `json:"pool,omitempty"`
}

// Mount is a host folder synced with a copy in the guest.
type Mount struct {
	Host     string `json:"host"`  // absolute, resolved
	Guest    string `json:"guest"` // absolute guest path
	ReadOnly bool   `json:"read_only,omitempty"`
}

// User is the guest's default exec user.
type User struct {
	Name string `json:"name"`
	UID  uint32 `json:"uid"`
	GID  uint32 `json:"gid"`
	Home string `json:"home"`
}

// ExitRecord is how a supervisor run ended (last-exit.json).
type ExitRecord struct {
	Time   time.Time `json:"time"`
	Clean  bool      `json:"clean"`  // stopped on request
	Reason string    `json:"reason"` // for humans: "stopped", "qemu exited: exit status 1"
}

// ExecRecord is one line of the exec audit log.
type ExecRecord struct {
	Time       time.Time `json:"time"`
	User       string    `json:"user"`
	Argv       []string  `json:"argv"`
	Cwd        string    `json:"cwd"`
	TTY        bool      `json:"tty,omitempty"`
	ExitCode   int32     `json:"exit_code"`
	Error      string    `json:"error,omitempty"`
	DurationMS int64     `json:"duration_ms"`
}

// CheckpointMeta describes a checkpoint (checkpoint.json).
type CheckpointMeta struct {
	Name        string        `json:"name"`
	Sandbox     string        `json:"sandbox"`
	Created     time.Time     `json:"created"`
	Config      SandboxConfig `json:"config"` // the sandbox's settings when taken
	MemoryBytes int64         `json:"memory_bytes"`
	Policy      string        `json:"policy,omitempty"` // the sandbox's network policy (YAML) when taken
}
