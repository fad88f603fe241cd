package e2bapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/paddock-dev/paddock/internal/netpolicy"
	"github.com/paddock-dev/paddock/internal/sandbox"
)

// envdVersion is what sandboxes report as their envd version: the SDKs
// gate features on it. At 0.5.2 they close stdin with CloseStdin and name
// no user unless the caller does (the sandbox's default user); below
// 0.5.7 they upload files as multipart forms, which is what /files takes.
const envdVersion = "0.5.2"

// e2bUser is the default user of an API sandbox, as in E2B's sandboxes:
// sudo-capable, home /home/user, where commands start.
const e2bUser = "user"

// clientID is E2B's deprecated client identifier, required in responses.
const clientID = "paddock"

// defaultTimeout is E2B's sandbox time to live when a create gives none.
const defaultTimeout = 15

// newSandbox is E2B's create request (NewSandbox).
type newSandbox struct {
	TemplateID      string `json:"templateID"`
	Timeout         *int   `json:"timeout"`
	AutoPause       bool   `json:"autoPause"`
	AutoPauseMemory *bool  `json:"autoPauseMemory"`
	AutoResume      *struct {
		Enabled bool `json:"enabled"`
	} `json:"autoResume"`
	AllowInternetAccess *bool             `json:"allow_internet_access"`
	Network             *networkConfig    `json:"network"`
	Metadata            map[string]string `json:"metadata"`
	EnvVars             map[string]string `json:"envVars"`
	// Secrets names secrets the key set (POST /secrets) to bind: paddock's
	// own field.
	Secrets      []string       `json:"secrets"`
	VolumeMounts []any          `json:"volumeMounts"`
	MCP          map[string]any `json:"mcp"`
}

type networkConfig struct {
	AllowOut []string               `json:"allowOut"`
	DenyOut  []string               `json:"denyOut"`
	Rules    map[string][]ruleEntry `json:"rules"`
	Mask     string                 `json:"maskRequestHost"`
	Proxy    map[string]any         `json:"egressProxy"`
	Public   *bool                  `json:"allowPublicTraffic"`
}

// sandboxResponse is E2B's Sandbox.
type sandboxResponse struct {
	TemplateID      string  `json:"templateID"`
	SandboxID       string  `json:"sandboxID"`
	Alias           string  `json:"alias,omitempty"`
	ClientID        string  `json:"clientID"`
	EnvdVersion     string  `json:"envdVersion"`
	EnvdAccessToken string  `json:"envdAccessToken,omitempty"`
	Domain          *string `json:"domain"`
}

// listedSandbox is E2B's ListedSandbox and, with fewer fields left out,
// SandboxDetail.
type listedSandbox struct {
	TemplateID  string            `json:"templateID"`
	Alias       string            `json:"alias,omitempty"`
	SandboxID   string            `json:"sandboxID"`
	ClientID    string            `json:"clientID"`
	StartedAt   time.Time         `json:"startedAt"`
	EndAt       time.Time         `json:"endAt"`
	CPUCount    int               `json:"cpuCount"`
	MemoryMB    int64             `json:"memoryMB"`
	DiskSizeMB  int64             `json:"diskSizeMB"`
	Metadata    map[string]string `json:"metadata,omitempty"`
	State       string            `json:"state"`
	EnvdVersion string            `json:"envdVersion"`
	// EnvdAccessToken is in SandboxDetail (get), not in list entries.
	EnvdAccessToken string `json:"envdAccessToken,omitempty"`
}

// unsupported lists what a create asks for that paddock cannot do.
func (n newSandbox) unsupported() []string {
	var out []string
	if len(n.VolumeMounts) > 0 {
		out = append(out, "volumeMounts")
	}
	if len(n.MCP) > 0 {
		out = append(out, "mcp")
	}
	if n.AutoResume != nil && n.AutoResume.Enabled {
		out = append(out, "autoResume (resume with connect)")
	}
	if n.AutoPauseMemory != nil && !*n.AutoPauseMemory {
		out = append(out, "autoPauseMemory false (a paused sandbox keeps its memory)")
	}
	if nc := n.Network; nc != nil {
		if nc.Mask != "" {
			out = append(out, "network.maskRequestHost")
		}
		if len(nc.Proxy) > 0 {
			out = append(out, "network.egressProxy")
		}
	}
	return out
}

// policy maps E2B's network settings onto a paddock policy. E2B lets allow
// entries win over deny entries, paddock the other way; the common case,
// deny everything but some destinations, is the deny-all preset with allow
// rules. Without settings a sandbox gets paddock's default (balanced).
func (n newSandbox) policy() (*netpolicy.Policy, error) {
	nc := n.Network
	closed := n.AllowInternetAccess != nil && !*n.AllowInternetAccess
	if nc == nil && !closed {
		return nil, nil
	}
	p := netpolicy.Policy{Preset: netpolicy.DefaultPreset}
	if closed {
		p.Preset = netpolicy.DenyAll
	}
	if nc == nil {
		return &p, nil
	}
	var errs []error
	for _, d := range nc.DenyOut {
		if d == "0.0.0.0/0" || d == "::/0" {
			p.Preset = netpolicy.DenyAll
			continue
		}
		if err := p.AddRule(false, cidrRule(d)); err != nil {
			errs = append(errs, fmt.Errorf("network.denyOut %q: %w", d, err))
		}
	}
	for _, a := range nc.AllowOut {
		rule := cidrRule(a)
		if rule == a { // a domain: E2B allows every port
			rule = a + ":*"
		}
		if err := p.AddRule(true, rule); err != nil {
			errs = append(errs, fmt.Errorf("network.allowOut %q: %w", a, err))
		}
	}
	return &p, errors.Join(errs...)
}

// cidrRule makes a bare IP address a /32 (or /128) CIDR; other entries are
// returned as they are.
func cidrRule(s string) string {
	if a, err := netip.ParseAddr(s); err == nil {
		return netip.PrefixFrom(a, a.BitLen()).String()
	}
	return s
}

func (s *Server) create(w http.ResponseWriter, r *http.Request, key string) {
	var req newSandbox
	if !readJSON(w, r, &req) {
		return
	}
	if req.TemplateID == "" {
		writeError(w, http.StatusBadRequest, "templateID is required")
		return
	}
	if n, at := s.atSandboxCap(key); at {
		writeError(w, http.StatusTooManyRequests, fmt.Sprintf("key %q has %d sandboxes, its cap: kill one first", key, n))
		return
	}
	if u := req.unsupported(); len(u) > 0 {
		writeError(w, http.StatusBadRequest, "paddock does not support "+strings.Join(u, ", ")+" (see docs/API.md)")
		return
	}
	timeout := defaultTimeout
	if req.Timeout != nil {
		timeout = *req.Timeout
	}
	if timeout <= 0 {
		writeError(w, http.StatusBadRequest, "timeout must be at least 1 second")
		return
	}
	pol, err := req.policy()
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	tpl, from := req.TemplateID, ""
	if tpl == "base" {
		tpl = s.DefaultTemplate
	}
	if _, ok := s.ownedSnapshot(key, tpl); ok {
		tpl, from = "", req.TemplateID // a fork of the key's snapshot
	}
	env := make([]string, 0, len(req.EnvVars))
	for k, v := range req.EnvVars {
		env = append(env, k+"="+v)
	}
	slices.Sort(env)
	ws, err := s.workspaceOf(req.Metadata)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if err := s.boundSecrets(key, req.Secrets); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	o := sandbox.CreateOptions{
		Template: tpl, From: from, Env: env, Policy: pol, NoWorkspace: ws == "", Workspace: ws, User: e2bUser, AutoPause: req.AutoPause,
		TTL: time.Duration(timeout) * time.Second, Metadata: req.Metadata, Owner: key,
		AccessToken: newAccessToken(), Secrets: req.Secrets,
	}
	if req.Network != nil && len(req.Network.Rules) > 0 {
		if err := s.addRuleSecrets(key, req.Network.Rules, &o); err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
	}
	cfg, err := s.createOrClaim(r.Context(), o)
	if err != nil {
		if o.Name != "" {
			s.secrets().RemoveSandbox(o.Name)
		}
		s.log.Warn("api create", "key", key, "err", err)
		writeError(w, createStatus(err), "create sandbox: "+err.Error())
		return
	}
	writeJSON(w, http.StatusCreated, sandboxResponse{
		TemplateID: req.TemplateID, SandboxID: cfg.Name, ClientID: clientID, EnvdVersion: envdVersion,
		EnvdAccessToken: cfg.AccessToken,
	})
}

// createStatus is the HTTP status of a failed create or snapshot: 409 for
// a name in use, 400 for what the caller asked wrong (an unknown template,
// a bad setting), else 500.
func createStatus(err error) int {
	msg := err.Error()
	if strings.Contains(msg, "already exists") {
		return http.StatusConflict
	}
	for _, s := range []string{"invalid", "not built", "no template", "unknown template", "not found"} {
		if strings.Contains(msg, s) {
			return http.StatusBadRequest
		}
	}
	return http.StatusInternalServerError
}

// owned returns the sandbox id if the key made it, else answers 404.
func (s *Server) owned(w http.ResponseWriter, r *http.Request, key string) (sandbox.Info, bool) {
	id := r.PathValue("sandboxID")
	info, err := s.m.Inspect(id)
	if err != nil || info.Owner != key {
		writeError(w, http.StatusNotFound, fmt.Sprintf("sandbox %q not found", id))
		return sandbox.Info{}, false
	}
	return info, true
}

// listed renders a sandbox; ok is false for one that is neither running
// nor paused (E2B lists only those).
func listed(info sandbox.Info) (listedSandbox, bool) {
	state := string(info.State)
	if state != "running" && state != "paused" {
		return listedSandbox{}, false
	}
	end := info.Created
	if info.Deadline != nil {
		end = *info.Deadline
	}
	return listedSandbox{
		TemplateID: info.Template, SandboxID: info.Name, ClientID: clientID,
		StartedAt: info.Created, EndAt: end, CPUCount: info.CPUs, MemoryMB: info.MemoryBytes >> 20,
		DiskSizeMB: info.DiskBytes >> 20, Metadata: info.Metadata, State: state, EnvdVersion: envdVersion,
	}, true
}

func (s *Server) list(w http.ResponseWriter, r *http.Request, key string) {
	q := r.URL.Query()
	want, err := url.ParseQuery(q.Get("metadata"))
	if err != nil {
		writeError(w, http.StatusBadRequest, "metadata filter: "+err.Error())
		return
	}
	var states []string
	for _, v := range q["state"] {
		states = append(states, strings.Split(v, ",")...)
	}
	all, err := s.m.List()
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	out := []listedSandbox{}
	for _, info := range all {
		ls, ok := listed(info)
		if !ok || info.Owner != key || !matches(info.Metadata, want) || (len(states) > 0 && !slices.Contains(states, ls.State)) {
			continue
		}
		out = append(out, ls)
	}
	slices.SortFunc(out, func(a, b listedSandbox) int { return b.StartedAt.Compare(a.StartedAt) })
	writeJSON(w, http.StatusOK, out)
}

// matches reports whether md has every key and value of want.
func matches(md map[string]string, want url.Values) bool {
	for k, vs := range want {
		for _, v := range vs {
			if md[k] != v {
				return false
			}
		}
	}
	return true
}

func (s *Server) get(w http.ResponseWriter, r *http.Request, key string) {
	info, ok := s.owned(w, r, key)
	if !ok {
		return
	}
	ls, ok := listed(info)
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("sandbox %q is %s", info.Name, info.Summary()))
		return
	}
	ls.EnvdAccessToken = info.AccessToken
	writeJSON(w, http.StatusOK, ls)
}

func (s *Server) kill(w http.ResponseWriter, r *http.Request, key string) {
	info, ok := s.owned(w, r, key)
	if !ok {
		return
	}
	if err := s.m.Remove(r.Context(), info.Name, true); err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// setDeadline moves a sandbox's deadline to seconds from now.
func (s *Server) setDeadline(w http.ResponseWriter, r *http.Request, key string, seconds int) {
	info, ok := s.owned(w, r, key)
	if !ok {
		return
	}
	if seconds <= 0 {
		writeError(w, http.StatusBadRequest, "timeout must be at least 1 second")
		return
	}
	if err := s.moveDeadline(r.Context(), info.Name, seconds); err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// moveDeadline sets sandbox name's deadline to seconds from now.
func (s *Server) moveDeadline(ctx context.Context, name string, seconds int) error {
	d := time.Now().Add(time.Duration(seconds) * time.Second).UTC()
	return s.m.SetDeadline(ctx, name, &d)
}

func (s *Server) setTimeout(w http.ResponseWriter, r *http.Request, key string) {
	var req struct {
		Timeout int `json:"timeout"`
	}
	if readJSON(w, r, &req) {
		s.setDeadline(w, r, key, req.Timeout)
	}
}

func (s *Server) refresh(w http.ResponseWriter, r *http.Request, key string) {
	req := struct {
		Duration int `json:"duration"`
	}{Duration: defaultTimeout}
	if readJSON(w, r, &req) {
		s.setDeadline(w, r, key, req.Duration)
	}
}

func (s *Server) pause(w http.ResponseWriter, r *http.Request, key string) {
	info, ok := s.owned(w, r, key)
	if !ok {
		return
	}
	if info.State == sandbox.StatePaused {
		writeError(w, http.StatusConflict, fmt.Sprintf("sandbox %q is already paused", info.Name))
		return
	}
	if err := s.m.Pause(r.Context(), info.Name); err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// resume serves resume and connect: a paused sandbox continues; a running
// one is returned as it is. A timeout in the body moves the deadline.
func (s *Server) resume(w http.ResponseWriter, r *http.Request, key string) {
	var req struct {
		Timeout *int `json:"timeout"`
	}
	if !readJSON(w, r, &req) {
		return
	}
	info, ok := s.owned(w, r, key)
	if !ok {
		return
	}
	code := http.StatusOK
	if info.State == sandbox.StatePaused {
		if err := s.m.Resume(r.Context(), info.Name); err != nil {
			writeError(w, http.StatusInternalServerError, err.Error())
			return
		}
		code = http.StatusCreated
	}
	if req.Timeout == nil && code == http.StatusCreated && info.Deadline == nil {
		// Paused at its deadline (autoPause): a resume gives it E2B's
		// default time to live unless it asks for one.
		t := defaultTimeout
		req.Timeout = &t
	}
	if req.Timeout != nil && *req.Timeout > 0 {
		if err := s.moveDeadline(r.Context(), info.Name, *req.Timeout); err != nil {
			writeError(w, http.StatusInternalServerError, err.Error())
			return
		}
	}
	writeJSON(w, code, sandboxResponse{TemplateID: info.Template, SandboxID: info.Name, ClientID: clientID, EnvdVersion: envdVersion, EnvdAccessToken: info.AccessToken})
}

// network replaces a running sandbox's egress rules (PUT network): the
// same mapping as a create's, live.
func (s *Server) network(w http.ResponseWriter, r *http.Request, key string) {
	var req struct {
		networkConfig
		AllowInternetAccess *bool `json:"allow_internet_access"`
	}
	if !readJSON(w, r, &req) {
		return
	}
	info, ok := s.owned(w, r, key)
	if !ok {
		return
	}
	ns := newSandbox{Network: &req.networkConfig, AllowInternetAccess: req.AllowInternetAccess}
	if u := ns.unsupported(); len(u) > 0 {
		writeError(w, http.StatusBadRequest, "paddock does not support "+strings.Join(u, ", ")+" (see docs/API.md)")
		return
	}
	p, err := ns.policy()
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	specs, err := ruleSecrets(req.Rules)
	for _, spec := range specs {
		spec.Name = ruleSecretName(info.Name, 1)
		if cerr := spec.Check(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("network.rules: %w", cerr))
		}
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if info.State != sandbox.StateRunning {
		writeError(w, http.StatusConflict, fmt.Sprintf("sandbox %q is %s: resume it first", info.Name, info.Summary()))
		return
	}
	if err := s.m.SetPolicy(r.Context(), info.Name, *p); err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	if err := s.replaceRuleSecrets(r.Context(), key, info.Name, specs); err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
