package mcpserver

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/paddock-dev/paddock/internal/netpolicy"
)

// recentDenials is how many of the latest denied requests a policy shows.
const recentDenials = 20

type policyIn struct {
	Name   string   `json:"name" jsonschema:"the sandbox's name"`
	Action string   `json:"action,omitempty" jsonschema:"show (the default): the policy and recent denials; allow or deny: add the rules, at once for new connections"`
	Rules  []string `json:"rules,omitempty" jsonschema:"for allow and deny: host patterns (NAME or *.SUFFIX) or CIDRs, each with an optional :PORT (hosts default to ports 80 and 443, :* is any); deny wins over allow"`
}

type denial struct {
	Time time.Time `json:"time"`
	Host string    `json:"host" jsonschema:"the name the guest asked for, or the address it dialled"`
	Dest string    `json:"dest,omitempty"`
	Rule string    `json:"rule" jsonschema:"the rule or preset that denied it"`
}

type policyOut struct {
	Preset   string            `json:"preset"`
	Allow    []string          `json:"allow,omitempty"`
	Deny     []string          `json:"deny,omitempty"`
	AddHosts map[string]string `json:"add_hosts,omitempty" jsonschema:"names pinned to addresses on the host side"`
	Denied   []denial          `json:"recent_denials" jsonschema:"the latest requests the policy refused, newest last: allow one with action allow"`
}

// checkPolicy checks a policy call's arguments, gathering every problem.
func checkPolicy(in policyIn) error {
	var errs []error
	if in.Name == "" {
		errs = append(errs, errNoName)
	}
	switch in.Action {
	case "", "show":
		if len(in.Rules) > 0 {
			errs = append(errs, errors.New("rules go with action allow or deny, not show"))
		}
	case "allow", "deny":
		if len(in.Rules) == 0 {
			errs = append(errs, fmt.Errorf("action %s needs rules, e.g. [\"registry.npmjs.org\"]", in.Action))
		}
		for _, r := range in.Rules {
			if _, err := netpolicy.ParseRule(r); err != nil {
				errs = append(errs, fmt.Errorf("rule %q: %w", r, err))
			}
		}
	default:
		errs = append(errs, fmt.Errorf("action %q: use show, allow or deny", in.Action))
	}
	return errors.Join(errs...)
}

func (t *tools) policy(ctx context.Context, req *mcp.CallToolRequest, in policyIn) (*mcp.CallToolResult, policyOut, error) {
	if err := checkPolicy(in); err != nil {
		return nil, policyOut{}, err
	}
	info, err := t.sandbox(req.Extra, in.Name)
	if err != nil {
		return nil, policyOut{}, err
	}
	if in.Action == "allow" || in.Action == "deny" {
		if err := t.m.AddPolicyRules(ctx, info.Name, in.Action == "allow", in.Rules); err != nil {
			return nil, policyOut{}, fmt.Errorf("policy %s on %q: %w", in.Action, info.Name, err)
		}
	}
	p, err := t.m.ReadPolicy(info.Name)
	if err != nil {
		return nil, policyOut{}, err
	}
	recs, err := t.m.NetRecords(info.Name)
	if err != nil {
		return nil, policyOut{}, err
	}
	return nil, policyOut{Preset: p.Preset, Allow: p.Allow, Deny: p.Deny, AddHosts: p.AddHosts, Denied: denials(recs, recentDenials)}, nil
}

// denials are the last n denied decisions of recs.
func denials(recs []netpolicy.Record, n int) []denial {
	out := []denial{}
	for _, r := range recs {
		if r.Verdict != netpolicy.Deny {
			continue
		}
		host := r.Name
		if host == "" {
			host = r.Dest
		}
		out = append(out, denial{Time: r.Time, Host: host, Dest: r.Dest, Rule: r.Rule})
	}
	return out[max(len(out)-n, 0):]
}
