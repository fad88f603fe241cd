package e2bapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/paddock-dev/paddock/internal/sandbox"
	"github.com/paddock-dev/paddock/internal/secret"
	"github.com/paddock-dev/paddock/internal/store"
)

// Secrets through the API (paddock's own endpoints; E2B has none). A key
// sees, binds and changes only the secrets it set: the store is the
// install's, shared with the CLI, so a name the CLI or another key holds
// is refused. A value is accepted on set and never returned.

// secretSpec is the body of POST /secrets.
type secretSpec struct {
	Name  string `json:"name"`
	Value string `json:"value"`
	// Hosts and Header make a custom definition; without them Name must
	// be a built-in service (anthropic, openai, google, github).
	Hosts     []string `json:"hosts"`
	Header    string   `json:"header"`
	Format    string   `json:"format"`
	BasicUser string   `json:"basicUser"`
	Env       string   `json:"env"`
	Query     bool     `json:"query"`
	Override  bool     `json:"override"`
}

// secretResponse describes a secret: never its value.
type secretResponse struct {
	Name        string   `json:"name"`
	Hosts       []string `json:"hosts"`
	Env         string   `json:"env"`
	Placeholder string   `json:"placeholder"`
	Service     string   `json:"service,omitempty"`
}

func secretOf(d secret.Definition) secretResponse {
	return secretResponse{Name: d.Name, Hosts: d.Hosts(), Env: d.Env, Placeholder: d.Placeholder, Service: d.Service}
}

func (s *Server) secrets() *secret.Store { return secret.Open(s.m.Home) }

func (s *Server) listSecrets(w http.ResponseWriter, r *http.Request, key string) {
	defs, err := s.secrets().List()
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	out := []secretResponse{}
	for _, d := range defs {
		if d.Owner == key {
			out = append(out, secretOf(d))
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) setSecret(w http.ResponseWriter, r *http.Request, key string) {
	var req secretSpec
	if !readJSON(w, r, &req) {
		return
	}
	if req.Value == "" {
		writeError(w, http.StatusBadRequest, "value is required")
		return
	}
	st := s.secrets()
	if d, err := st.Get(req.Name); err == nil && d.Owner != key {
		writeError(w, http.StatusConflict, fmt.Sprintf("secret %q is another key's or the CLI's: choose another name", req.Name))
		return
	}
	spec := secret.Spec{Name: req.Name, Env: req.Env, Query: req.Query, Owner: key, Value: req.Value, Source: secret.Source{Kind: secret.FromStdin}}
	if len(req.Hosts) > 0 || req.Header != "" || req.BasicUser != "" || req.Override {
		header := req.Header
		if header == "" && req.BasicUser != "" {
			header = "Authorization"
		}
		spec.Targets = []secret.Target{{Hosts: req.Hosts, Header: header, Format: req.Format, BasicUser: req.BasicUser, Override: req.Override}}
	}
	d, err := st.Set(spec)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	s.log.Info("api secret set", "key", key, "secret", d.Name)
	writeJSON(w, http.StatusCreated, secretOf(d))
}

func (s *Server) deleteSecret(w http.ResponseWriter, r *http.Request, key string) {
	name := r.PathValue("name")
	st := s.secrets()
	if d, err := st.Get(name); err != nil || d.Owner != key {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no secret named %q for this key", name))
		return
	}
	if err := st.Remove(name); err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// bindSecrets binds the key's secrets to its sandbox and unbinds others,
// running or not (paddock secret bind, unbind): {"bind": [...],
// "unbind": [...]}; the answer is the bound secrets after, {"secrets":
// [...]}. Nothing changes when any name is refused.
func (s *Server) bindSecrets(w http.ResponseWriter, r *http.Request, key string) {
	info, ok := s.owned(w, r, key)
	if !ok {
		return
	}
	var req struct {
		Bind   []string `json:"bind"`
		Unbind []string `json:"unbind"`
	}
	if !readJSON(w, r, &req) {
		return
	}
	if len(req.Bind)+len(req.Unbind) == 0 {
		writeError(w, http.StatusBadRequest, "name secrets to bind or unbind")
		return
	}
	if err := s.boundSecrets(key, req.Bind); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	names, err := s.m.BindSecrets(r.Context(), info.Name, req.Bind, req.Unbind)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	s.log.Info("api secrets bound", "key", key, "sandbox", info.Name, "bind", req.Bind, "unbind", req.Unbind)
	if names == nil {
		names = []string{}
	}
	writeJSON(w, http.StatusOK, map[string][]string{"secrets": names})
}

// boundSecrets checks that key owns every secret a create binds.
func (s *Server) boundSecrets(key string, names []string) error {
	found, _, err := s.secrets().Lookup(names)
	if err != nil {
		return err
	}
	var errs []error
	for _, n := range names {
		if !slices.ContainsFunc(found, func(d secret.Definition) bool { return d.Name == n && d.Owner == key }) {
			errs = append(errs, fmt.Errorf("no secret named %q for this key (POST /secrets sets one)", n))
		}
	}
	return errors.Join(errs...)
}

// ruleSecrets turns E2B's network.rules, {HOST: [{transform: {headers:
// {NAME: VALUE}}}]}, into secrets of the sandbox's own, one per host and
// header: the value is injected as that header into the sandbox's
// requests to the host, as for any bound secret, and never enters the
// VM. The header replaces one the request has. They are named
// SANDBOX-rule-N and removed with the sandbox.
func ruleSecrets(rules map[string][]ruleEntry) ([]secret.Spec, error) {
	hosts := make([]string, 0, len(rules))
	for h := range rules {
		hosts = append(hosts, h)
	}
	slices.Sort(hosts)
	var specs []secret.Spec
	var errs []error
	for _, h := range hosts {
		for _, e := range rules[h] {
			if e.Transform == nil || len(e.Transform.Headers) == 0 {
				errs = append(errs, fmt.Errorf("network.rules[%q]: only transform.headers is supported", h))
				continue
			}
			names := make([]string, 0, len(e.Transform.Headers))
			for n := range e.Transform.Headers {
				names = append(names, n)
			}
			slices.Sort(names)
			for _, n := range names {
				specs = append(specs, secret.Spec{
					Targets: []secret.Target{{Hosts: []string{strings.ToLower(h)}, Header: n, Override: true}},
					Value:   e.Transform.Headers[n],
					Source:  secret.Source{Kind: secret.FromStdin},
				})
			}
		}
	}
	return specs, errors.Join(errs...)
}

// ruleEntry is one of E2B's per-host network rules.
type ruleEntry struct {
	Transform *struct {
		Headers map[string]string `json:"headers"`
	} `json:"transform"`
}

// addRuleSecrets stores the secrets of E2B's network.rules for a new
// sandbox, which it names now so that they can be its own, and binds them.
func (s *Server) addRuleSecrets(key string, rules map[string][]ruleEntry, o *sandbox.CreateOptions) error {
	specs, err := ruleSecrets(rules)
	if err != nil {
		return err
	}
	o.Name = store.GenerateName()
	names, err := s.storeRuleSecrets(key, o.Name, 1, specs)
	o.Secrets = append(o.Secrets, names...)
	return err
}

// ruleSecretName is the name of sandbox's n-th network.rules secret.
func ruleSecretName(sandbox string, n int) string { return fmt.Sprintf("%s-rule-%d", sandbox, n) }

// storeRuleSecrets stores specs as key's secrets of sandbox, named from
// its first-th rule secret on, and returns their names. On a failure it
// removes those it stored.
func (s *Server) storeRuleSecrets(key, sandbox string, first int, specs []secret.Spec) ([]string, error) {
	st := s.secrets()
	var names []string
	for i, spec := range specs {
		spec.Name = ruleSecretName(sandbox, first+i)
		spec.Owner, spec.Sandbox = key, sandbox
		if _, err := st.Set(spec); err != nil {
			for _, n := range names {
				st.Remove(n)
			}
			return nil, fmt.Errorf("network.rules: %w", err)
		}
		names = append(names, spec.Name)
	}
	return names, nil
}

// replaceRuleSecrets gives running sandbox name the secrets of PUT
// network's rules in place of those it has (E2B replaces the whole
// network configuration, so rules left out are cleared): the new ones are
// stored and bound, the old unbound and removed. On a failure the new ones
// are removed and the old stay.
func (s *Server) replaceRuleSecrets(ctx context.Context, key, name string, specs []secret.Spec) error {
	st := s.secrets()
	cfg, err := s.m.Config(name)
	if err != nil {
		return err
	}
	bound, _, err := st.Lookup(cfg.Secrets)
	if err != nil {
		return err
	}
	var old []string
	next := 1
	for _, d := range bound {
		if d.Sandbox != name {
			continue
		}
		old = append(old, d.Name)
		var n int
		if _, err := fmt.Sscanf(strings.TrimPrefix(d.Name, name+"-rule-"), "%d", &n); err == nil && n >= next {
			next = n + 1
		}
	}
	added, err := s.storeRuleSecrets(key, name, next, specs)
	if err != nil || len(added)+len(old) == 0 {
		return err
	}
	if _, err := s.m.BindSecrets(ctx, name, added, old); err != nil {
		for _, n := range added {
			st.Remove(n)
		}
		return err
	}
	for _, n := range old {
		st.Remove(n)
	}
	return nil
}
