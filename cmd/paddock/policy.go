package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	supervisorv1 "github.com/paddock-dev/paddock/api/supervisor/v1"
	"github.com/paddock-dev/paddock/internal/netpolicy"
	"github.com/paddock-dev/paddock/internal/sandbox"
	"github.com/paddock-dev/paddock/internal/termsafe"
)

// policyFlags are create's network policy flags.
type policyFlags struct {
	spec                string
	allowHost, denyHost []string
	allowCIDR, denyCIDR []string
	addHost             []string
	dnsUpstream         string
}

func (pf *policyFlags) register(f *pflag.FlagSet) {
	f.StringVar(&pf.spec, "policy", netpolicy.DefaultPreset, "network policy: a preset ("+strings.Join(netpolicy.Presets, ", ")+") or a policy YAML file (see docs/NETWORK.md)")
	f.StringArrayVar(&pf.allowHost, "allow-host", nil, "allow a host: NAME or '*.SUFFIX', :PORT optional (default ports 80 and 443, :* any)")
	f.StringArrayVar(&pf.denyHost, "deny-host", nil, "deny a host pattern (deny wins over allow)")
	f.StringArrayVar(&pf.allowCIDR, "allow-cidr", nil, "allow an address range CIDR[:PORT]; the only way to open private, loopback or link-local addresses")
	f.StringArrayVar(&pf.denyCIDR, "deny-cidr", nil, "deny an address range CIDR[:PORT]")
	f.StringArrayVar(&pf.addHost, "add-host", nil, "pin a name to a host-side address, NAME:IP (the address is still checked)")
	f.StringVar(&pf.dnsUpstream, "dns-upstream", "", "resolver the host side asks, ADDR[:PORT] (default: the host's /etc/resolv.conf)")
}

// policy builds the policy the flags describe, gathering every problem.
func (pf *policyFlags) policy() (*netpolicy.Policy, error) {
	p, err := netpolicy.Load(pf.spec)
	if err != nil {
		return nil, err
	}
	var errs []error
	add := func(list []string, allow, cidr bool, flag string) {
		for _, s := range list {
			r, err := netpolicy.ParseRule(s)
			switch {
			case err != nil:
				errs = append(errs, fmt.Errorf("--%s: %w", flag, err))
			case r.IsCIDR() != cidr && cidr:
				errs = append(errs, fmt.Errorf("--%s %q: not a CIDR (use --%s-host for names)", flag, s, map[bool]string{true: "allow", false: "deny"}[allow]))
			case r.IsCIDR() != cidr:
				errs = append(errs, fmt.Errorf("--%s %q: an address, not a host pattern (use --%s-cidr)", flag, s, map[bool]string{true: "allow", false: "deny"}[allow]))
			default:
				p.AddRule(allow, s)
			}
		}
	}
	add(pf.allowHost, true, false, "allow-host")
	add(pf.denyHost, false, false, "deny-host")
	add(pf.allowCIDR, true, true, "allow-cidr")
	add(pf.denyCIDR, false, true, "deny-cidr")
	for _, h := range pf.addHost {
		i := strings.Index(h, ":")
		if i <= 0 {
			errs = append(errs, fmt.Errorf("--add-host %q: want NAME:IP", h))
			continue
		}
		if p.AddHosts == nil {
			p.AddHosts = map[string]string{}
		}
		p.AddHosts[strings.ToLower(h[:i])] = h[i+1:]
	}
	if pf.dnsUpstream != "" {
		p.DNSUpstream = pf.dnsUpstream
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if _, err := netpolicy.Compile(p); err != nil {
		return nil, err
	}
	return &p, nil
}

func policyCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "Show and change a sandbox's network policy, read its decisions",
		Long: `Every outbound connection of a sandbox passes its network policy, enforced on the host.
A RULE is a host pattern (name or *.suffix) or a CIDR, each with an optional :PORT
(host rules default to ports 80 and 443, CIDRs to any; :* is any). Deny wins over allow.
Changes to a running sandbox apply at once to new connections. See docs/NETWORK.md.`,
	}
	cmd.AddCommand(policyShowCmd(), policyRuleCmd(true), policyRuleCmd(false), policySetCmd(), policyLogCmd(), policySuggestCmd())
	return cmd
}

func policyShowCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "show NAME",
		Short: "Print the policy in force, as policy YAML",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := manager()
			if err != nil {
				return err
			}
			if m.Running(args[0]) {
				c, err := m.Dial(args[0])
				if err != nil {
					return err
				}
				defer c.Close()
				resp, err := c.Supervisor.GetPolicy(cmd.Context(), &supervisorv1.GetPolicyRequest{})
				if err != nil {
					return fmt.Errorf("policy show %s: %w", args[0], grpcError(err))
				}
				fmt.Print(resp.Yaml)
				printBoundSecrets(m, args[0])
				return nil
			}
			p, err := m.ReadPolicy(args[0])
			if err != nil {
				return err
			}
			os.Stdout.Write(p.Marshal())
			printBoundSecrets(m, args[0])
			return nil
		},
	}
}

// printBoundSecrets lists the sandbox's bound secrets after its policy, as
// YAML comments (the output stays a policy that policy set takes).
func printBoundSecrets(m *sandbox.Manager, name string) {
	info, err := m.Inspect(name)
	if err != nil || len(info.Secrets) == 0 {
		return
	}
	fmt.Println("# bound secrets, injected by the host into requests for their hosts (paddock secret ls):")
	for _, b := range info.Secrets {
		if b.Missing {
			fmt.Printf("#   %s: removed from the store, nothing injected\n", b.Name)
			continue
		}
		fmt.Printf("#   %s: %s (guest variable %s)\n", b.Name, strings.Join(b.Hosts, ", "), b.Env)
	}
}

func policyRuleCmd(allow bool) *cobra.Command {
	verb := map[bool]string{true: "allow", false: "deny"}[allow]
	return &cobra.Command{
		Use:     verb + " NAME RULE...",
		Short:   "Add " + verb + " rules (live on a running sandbox)",
		Example: "  paddock policy " + verb + " web registry.npmjs.org\n  paddock policy " + verb + " web 203.0.113.0/24:5432 '*.example.com:*'",
		Args:    cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := manager()
			if err != nil {
				return err
			}
			name := args[0]
			for _, r := range args[1:] {
				if _, err := netpolicy.ParseRule(r); err != nil {
					return fmt.Errorf("policy %s %s: %w", verb, name, err)
				}
			}
			if m.Running(name) {
				c, err := m.Dial(name)
				if err != nil {
					return err
				}
				defer c.Close()
				for _, r := range args[1:] {
					if _, err := c.Supervisor.AddPolicyRule(cmd.Context(), &supervisorv1.AddPolicyRuleRequest{Allow: allow, Rule: r}); err != nil {
						return fmt.Errorf("policy %s %s %s: %w", verb, name, r, grpcError(err))
					}
				}
				return nil
			}
			p, err := m.ReadPolicy(name)
			if err != nil {
				return err
			}
			for _, r := range args[1:] {
				p.AddRule(allow, r)
			}
			return m.WritePolicy(name, p)
		},
	}
}

func policySetCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "set NAME FILE|PRESET",
		Short: "Replace the policy with a policy YAML file or a preset (live on a running sandbox)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := manager()
			if err != nil {
				return err
			}
			p, err := netpolicy.Load(args[1])
			if err != nil {
				return err
			}
			if err := m.SetPolicy(cmd.Context(), args[0], p); err != nil {
				return fmt.Errorf("policy set %s: %w", args[0], grpcError(err))
			}
			return nil
		},
	}
}

func policyLogCmd() *cobra.Command {
	var asJSON, follow bool
	cmd := &cobra.Command{
		Use:   "log NAME",
		Short: "Print every network decision, with the rule that made it",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := manager()
			if err != nil {
				return err
			}
			files, err := m.LogFiles(args[0], sandbox.NetLog)
			if err != nil {
				return err
			}
			// Names and errors in the log are the guest's bytes.
			out := termsafe.Writer(os.Stdout)
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			if !asJSON {
				fmt.Fprintln(tw, "TIME\tEVENT\tPROTO\tDEST\tNAME\tVERDICT\tRULE\tDETAIL")
			}
			defer tw.Flush()
			return sandbox.TailLog(cmd.Context(), files, follow, func(line []byte) {
				if asJSON {
					out.Write(line)
					return
				}
				var r netpolicy.Record
				if json.Unmarshal(line, &r) != nil {
					return
				}
				fmt.Fprintln(tw, formatRecord(r))
				if follow {
					tw.Flush()
				}
			})
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the raw JSON lines")
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new decisions")
	return cmd
}

func formatRecord(r netpolicy.Record) string {
	dest := r.Dest
	if r.Addr != "" && r.Name != "" {
		dest += " (" + r.Addr + ")"
	}
	detail := r.Error
	switch r.Event {
	case "close":
		detail = fmt.Sprintf("sent %d, received %d", r.Sent, r.Received)
	case "request": // GET /v1/messages -> 200 [anthropic]
		detail = fmt.Sprintf("%s %s -> %d", r.Method, r.Path, r.Status)
		if len(r.Secrets) > 0 {
			detail += " [" + strings.Join(r.Secrets, ", ") + "]"
		}
		if r.Error != "" {
			detail += ": " + r.Error
		}
	}
	proto := r.Proto
	if r.Type != "" {
		proto += " " + r.Type
	}
	return strings.Join([]string{r.Time.Local().Format("15:04:05.000"), r.Event, proto, dest, r.Name, r.Verdict, r.Rule, detail}, "\t")
}

func policySuggestCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "suggest NAME",
		Short: "Print the smallest policy that allows what the sandbox's log saw",
		Long: `Suggest reads the sandbox's network log (run it with --policy learn to see everything
it wants) and prints a deny-all policy that allows exactly the hosts and addresses that
were reached, keeping the sandbox's add_hosts and dns_upstream. Use it with --policy FILE
or paddock policy set.`,
		Example: "  paddock create --name d --policy learn; ...; paddock policy suggest d > policy.yaml",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := manager()
			if err != nil {
				return err
			}
			base, err := m.ReadPolicy(args[0])
			if err != nil {
				return err
			}
			recs, err := m.NetRecords(args[0])
			if err != nil {
				return err
			}
			os.Stdout.Write(netpolicy.Suggest(base, recs).Marshal())
			return nil
		},
	}
}
