package dashboard

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"time"

	"github.com/paddock-dev/paddock/internal/netpolicy"
	"github.com/paddock-dev/paddock/internal/sandbox"
	"github.com/paddock-dev/paddock/internal/store"
	"github.com/paddock-dev/paddock/internal/template"
)

// actionTimeout bounds a create, reset or checkpoint, which go on when the
// browser leaves the page.
const actionTimeout = 10 * time.Minute

// sandboxView is a sandbox as the pages show it.
type sandboxView struct {
	Name        string     `json:"name"`
	State       string     `json:"state"`
	Reason      string     `json:"reason,omitempty"`
	Template    string     `json:"template"`
	Owner       string     `json:"owner,omitempty"`
	Created     time.Time  `json:"created"`
	Deadline    *time.Time `json:"deadline,omitempty"`
	CPUs        int        `json:"cpus"`
	MemoryBytes int64      `json:"memory_bytes"`
	Boot        string     `json:"boot,omitempty"`
	From        string     `json:"from,omitempty"`
	Pool        string     `json:"pool,omitempty"`
	// Use is the latest sample of its use of the host, when running.
	Use *point `json:"use,omitempty"`
}

func (d *Dashboard) view(info sandbox.Info) sandboxView {
	v := sandboxView{
		Name: info.Name, State: string(info.State), Reason: info.Reason, Template: info.Template, Owner: info.Owner,
		Created: info.Created, Deadline: info.Deadline, CPUs: info.CPUs, MemoryBytes: info.MemoryBytes,
		Boot: info.Boot, From: info.From, Pool: info.Pool,
	}
	if p, ok := d.history.latest(info.Name); ok && (info.State == sandbox.StateRunning || info.State == sandbox.StatePaused) {
		v.Use = &p
	}
	return v
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// writeError answers {"error": msg}.
func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

// readJSON decodes a body of at most 64 KiB into v (an empty one leaves v
// as it is); it answers the error itself.
func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(v)
	if err != nil && !errors.Is(err, io.EOF) {
		writeError(w, http.StatusBadRequest, "invalid JSON body: "+err.Error())
		return false
	}
	return true
}

// visible returns the sandbox the request names, if c may see it; else it
// answers 404 (a sandbox of another key is not there for c).
func (d *Dashboard) visible(w http.ResponseWriter, r *http.Request, c caller) (sandbox.Info, bool) {
	name := r.PathValue("name")
	info, err := d.m.Inspect(name)
	if err != nil || !c.sees(info) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no sandbox %q", name))
		return sandbox.Info{}, false
	}
	return info, true
}

func (d *Dashboard) me(w http.ResponseWriter, r *http.Request, c caller) {
	writeJSON(w, http.StatusOK, map[string]any{"key": c.Key, "admin": c.Admin, "default_template": d.cfg.DefaultTemplate})
}

func (d *Dashboard) templates(w http.ResponseWriter, r *http.Request, c caller) {
	all, err := template.List(string(d.m.Home))
	if err != nil && len(all) == 0 {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	out := []string{}
	for _, t := range all {
		if t.Built {
			out = append(out, t.Name)
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (d *Dashboard) list(w http.ResponseWriter, r *http.Request, c caller) {
	d.history.watch()
	all, err := d.m.List()
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	out := []sandboxView{}
	for _, info := range all {
		if c.sees(info) {
			out = append(out, d.view(info))
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// createRequest is the create form.
type createRequest struct {
	Name       string `json:"name"`
	Template   string `json:"template"`
	Policy     string `json:"policy"`
	TTLSeconds int    `json:"ttl_s"`
	CPUs       int    `json:"cpus"`   // 0: the default
	Memory     string `json:"memory"` // "1G"; "": the default
}

func (d *Dashboard) create(w http.ResponseWriter, r *http.Request, c caller) {
	var req createRequest
	if !readJSON(w, r, &req) {
		return
	}
	o := sandbox.CreateOptions{Name: req.Name, Template: req.Template, Owner: c.Key, NoWorkspace: true, TTL: time.Duration(req.TTLSeconds) * time.Second,
		CPUs: req.CPUs, Memory: req.Memory}
	var errs []error
	if req.Name != "" {
		if err := store.ValidateName(req.Name); err != nil {
			errs = append(errs, fmt.Errorf("name: %w", err))
		}
	}
	if req.Template == "" {
		errs = append(errs, errors.New("template: choose one"))
	}
	if req.TTLSeconds < 0 {
		errs = append(errs, errors.New("time to live: give seconds, or 0 for none"))
	}
	if req.Policy != "" {
		p, err := netpolicy.Load(req.Policy)
		if err != nil || !slices.Contains(netpolicy.Presets, req.Policy) {
			errs = append(errs, fmt.Errorf("policy %q: use one of %v", req.Policy, netpolicy.Presets))
		}
		o.Policy = &p
	}
	if err := errors.Join(errs...); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if d.cfg.Admit != nil {
		if err := d.cfg.Admit(c.Key); err != nil {
			writeError(w, http.StatusTooManyRequests, err.Error())
			return
		}
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), actionTimeout)
	defer cancel()
	cfg, err := d.m.Create(ctx, o)
	if err != nil {
		d.log.Warn("dashboard create", "key", c.Key, "err", err)
		writeError(w, http.StatusBadRequest, "create: "+err.Error())
		return
	}
	d.log.Info("dashboard create", "key", c.Key, "sandbox", cfg.Name)
	info, err := d.m.Inspect(cfg.Name)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusCreated, d.view(info))
}

// detail is the sandbox page's header: the sandbox and its policy.
type detail struct {
	sandboxView
	Policy *netpolicy.Policy `json:"policy,omitempty"`
}

func (d *Dashboard) get(w http.ResponseWriter, r *http.Request, c caller) {
	info, ok := d.visible(w, r, c)
	if !ok {
		return
	}
	d.history.watch()
	out := detail{sandboxView: d.view(info)}
	if p, err := d.m.ReadPolicy(info.Name); err == nil {
		out.Policy = &p
	}
	writeJSON(w, http.StatusOK, out)
}

// act runs one action on a sandbox: pause, resume, start, reset,
// checkpoint, remove, or allow (a denied destination of its network log).
func (d *Dashboard) act(w http.ResponseWriter, r *http.Request, c caller) {
	info, ok := d.visible(w, r, c)
	if !ok {
		return
	}
	var req struct {
		Checkpoint string `json:"checkpoint"`
		Name       string `json:"name"` // allow: the record's name, dest and port
		Dest       string `json:"dest"`
		Port       uint16 `json:"port"`
	}
	if !readJSON(w, r, &req) {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), actionTimeout)
	defer cancel()
	name, action := info.Name, r.PathValue("action")
	var err error
	out := map[string]any{"sandbox": name, "action": action}
	switch action {
	case "pause":
		err = d.m.Pause(ctx, name)
	case "resume":
		err = d.m.Resume(ctx, name)
	case "start":
		err = d.m.Start(ctx, name)
	case "reset":
		err = d.m.Reset(ctx, name)
	case "remove":
		err = d.m.Remove(ctx, name, true)
	case "checkpoint":
		ck := req.Checkpoint
		if ck == "" {
			if ck = name + "-" + time.Now().UTC().Format("20060102-150405"); len(ck) > 63 {
				ck = store.GenerateName()
			}
		}
		var meta store.CheckpointMeta
		if meta, err = d.m.Checkpoint(ctx, name, ck); err == nil {
			out["checkpoint"] = meta.Name
		}
	case "fork":
		var fork string
		if fork, err = d.fork(ctx, c, name); err == nil {
			out["fork"] = fork
		}
	case "allow":
		rule := netpolicy.AllowRuleFor(netpolicy.Record{Name: req.Name, Dest: req.Dest, Port: req.Port})
		if rule == "" {
			writeError(w, http.StatusBadRequest, "allow: give the denied record's name or dest")
			return
		}
		if err = d.m.AddPolicyRules(ctx, name, true, []string{rule}); err == nil {
			out["rule"] = rule
		}
	default:
		writeError(w, http.StatusNotFound, fmt.Sprintf("no action %q: use pause, resume, start, reset, checkpoint, fork, remove or allow", action))
		return
	}
	if err != nil {
		d.log.Warn("dashboard action", "key", c.Key, "sandbox", name, "action", action, "err", err)
		writeError(w, http.StatusConflict, action+" "+name+": "+err.Error())
		return
	}
	d.log.Info("dashboard action", "key", c.Key, "sandbox", name, "action", action)
	writeJSON(w, http.StatusOK, out)
}

// fork makes a new sandbox of the caller's from running sandbox name as
// it is now, as the API's fork does: a checkpoint of it (which goes on
// running), a create from that (no workspace), then the checkpoint
// removed. It returns the fork's name.
func (d *Dashboard) fork(ctx context.Context, c caller, name string) (string, error) {
	if d.cfg.Admit != nil {
		if err := d.cfg.Admit(c.Key); err != nil {
			return "", err
		}
	}
	var fork string
	err := d.m.WithCheckpoint(ctx, name, func(ckpt string) error {
		cfg, err := d.m.Create(ctx, sandbox.CreateOptions{From: ckpt, Owner: c.Key, NoWorkspace: true})
		fork = cfg.Name
		return err
	})
	return fork, err
}
