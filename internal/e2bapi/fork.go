package e2bapi

import (
	"fmt"
	"net/http"
	"runtime"
	"time"

	"github.com/paddock-dev/paddock/internal/sandbox"
	"github.com/paddock-dev/paddock/internal/template"
)

// forkResult is E2B's SandboxForkResult: a fork, or why it did not start.
type forkResult struct {
	Sandbox *sandboxResponse `json:"sandbox,omitempty"`
	Error   *apiError        `json:"error,omitempty"`
}

// fork serves POST /sandboxes/{id}/fork: the sandbox is checkpointed once
// (it keeps running, with its id and deadline) and count sandboxes are
// made from that checkpoint, each with the key's ownership, the source's
// metadata, a token of its own and the given timeout. The checkpoint is
// removed afterwards: a fork copies what it needs at its start.
func (s *Server) fork(w http.ResponseWriter, r *http.Request, key string) {
	var req struct {
		Timeout *int `json:"timeout"`
		Count   *int `json:"count"`
	}
	if !readJSON(w, r, &req) {
		return
	}
	timeout, count := defaultTimeout, 1
	if req.Timeout != nil {
		timeout = *req.Timeout
	}
	if req.Count != nil {
		count = *req.Count
	}
	if timeout <= 0 || count < 1 || count > 100 {
		writeError(w, http.StatusBadRequest, "fork: timeout must be at least 1 second and count 1 to 100")
		return
	}
	info, ok := s.owned(w, r, key)
	if !ok {
		return
	}
	if info.State != sandbox.StateRunning {
		writeError(w, http.StatusConflict, fmt.Sprintf("sandbox %q is %s: only a running sandbox is forked", info.Name, info.Summary()))
		return
	}
	var out []forkResult
	err := s.m.WithCheckpoint(r.Context(), info.Name, func(ckpt string) error {
		out = s.forks(r, key, info, ckpt, count, timeout)
		return nil
	})
	if err != nil {
		writeError(w, createStatus(err), "fork: "+err.Error())
		return
	}
	writeJSON(w, http.StatusCreated, out)
}

// forks makes count sandboxes from checkpoint ckpt of sandbox info for
// key: each one's result, in order.
func (s *Server) forks(r *http.Request, key string, info sandbox.Info, ckpt string, count, timeout int) []forkResult {
	out := make([]forkResult, 0, count)
	for range count {
		if n, at := s.atSandboxCap(key); at {
			out = append(out, forkResult{Error: &apiError{Code: http.StatusTooManyRequests, Message: fmt.Sprintf("key %q has %d sandboxes, its cap", key, n)}})
			continue
		}
		cfg, err := s.createOrClaim(r.Context(), sandbox.CreateOptions{
			From: ckpt, NoWorkspace: true, TTL: time.Duration(timeout) * time.Second,
			Metadata: info.Metadata, Owner: key, AccessToken: newAccessToken(),
		})
		if err != nil {
			s.log.Warn("api fork", "key", key, "sandbox", info.Name, "err", err)
			out = append(out, forkResult{Error: &apiError{Code: createStatus(err), Message: "fork: " + err.Error()}})
			continue
		}
		out = append(out, forkResult{Sandbox: &sandboxResponse{
			TemplateID: info.Template, SandboxID: cfg.Name, ClientID: clientID, EnvdVersion: envdVersion,
			EnvdAccessToken: cfg.AccessToken,
		}})
	}
	return out
}

// templateEntry is E2B's Template.
type templateEntry struct {
	TemplateID    string    `json:"templateID"`
	BuildID       string    `json:"buildID"`
	CPUCount      int       `json:"cpuCount"`
	MemoryMB      int       `json:"memoryMB"`
	DiskSizeMB    int64     `json:"diskSizeMB"`
	Public        bool      `json:"public"`
	Aliases       []string  `json:"aliases"`
	Names         []string  `json:"names"`
	CreatedAt     time.Time `json:"createdAt"`
	UpdatedAt     time.Time `json:"updatedAt"`
	CreatedBy     *struct{} `json:"createdBy"`
	LastSpawnedAt *string   `json:"lastSpawnedAt"`
	SpawnCount    int       `json:"spawnCount"`
	BuildCount    int       `json:"buildCount"`
	EnvdVersion   string    `json:"envdVersion"`
	BuildStatus   string    `json:"buildStatus"`
}

// templates serves GET /templates: paddock's built templates (every key
// sees them all; they are the host's), the default one also named base.
// The size is a create's default: 2 CPUs (at most the host's) and 2 GiB.
func (s *Server) templates(w http.ResponseWriter, r *http.Request, key string) {
	all, err := template.List(string(s.m.Home))
	if err != nil && len(all) == 0 {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	out := []templateEntry{}
	for _, t := range all {
		if !t.Built {
			continue
		}
		names := []string{t.Name}
		if t.Name == s.DefaultTemplate {
			names = append(names, "base")
		}
		out = append(out, templateEntry{
			TemplateID: t.Name, BuildID: t.RecipeHash, CPUCount: min(2, runtime.NumCPU()), MemoryMB: 2048, DiskSizeMB: t.DiskSize >> 20,
			Aliases: names, Names: names, CreatedAt: t.Created, UpdatedAt: t.Created, BuildCount: 1,
			EnvdVersion: envdVersion, BuildStatus: "ready",
		})
	}
	writeJSON(w, http.StatusOK, out)
}
