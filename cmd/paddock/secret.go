package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/paddock-dev/paddock/internal/secret"
)

func secretCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "secret",
		Short: "Manage credentials kept on the host, encrypted, never in a sandbox",
		Long: "Secrets are kept in PADDOCK_HOME, their values encrypted (AES-256-GCM) under a key in a\n" +
			"separate file, or produced by a command run on the host when needed. A sandbox is\n" +
			"meant to see only a secret's placeholder, paddock-secret-NAME-RANDOM.\n\n" +
			"Built-in services (a secret of that name set without --host): " + builtinList() + ".",
	}
	cmd.AddCommand(secretSetCmd(), secretLsCmd(), secretRmCmd(), secretBindCmd(true), secretBindCmd(false))
	return cmd
}

// secretBindCmd is secret bind, or with bind false secret unbind.
func secretBindCmd(bind bool) *cobra.Command {
	use, short, verb := "bind", "Bind secrets to a sandbox, running or stopped", "bind"
	if !bind {
		use, short, verb = "unbind", "Unbind secrets from a sandbox, running or stopped", "unbind"
	}
	return &cobra.Command{
		Use:   use + " SANDBOX SECRET...",
		Short: short,
		Long: short + " (as create --secret binds them).\n\n" +
			"In a running sandbox, execs started after this get each bound secret's placeholder in\n" +
			"its variable (an unbound one's is gone), and the forwarder injects or refuses from the\n" +
			"next request on; processes already running keep the environment they started with.",
		Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := manager()
			if err != nil {
				return err
			}
			var add, drop []string
			if bind {
				add = args[1:]
			} else {
				drop = args[1:]
			}
			names, err := m.BindSecrets(cmd.Context(), args[0], add, drop)
			if err != nil {
				return fmt.Errorf("secret %s: %w", verb, err)
			}
			if len(names) == 0 {
				fmt.Fprintf(cmd.OutOrStdout(), "%s: no secrets bound\n", args[0])
			} else {
				fmt.Fprintf(cmd.OutOrStdout(), "%s: secrets bound: %s\n", args[0], strings.Join(names, ", "))
			}
			return nil
		},
	}
}

// secretSetFlags are the flags of secret set.
type secretSetFlags struct {
	hosts                     []string
	header, format, basicUser string
	env                       string
	query, passPlaceholder    bool
	override                  bool
	stdin                     bool
	fromEnv, command          string
	cache                     time.Duration
}

func secretSetCmd() *cobra.Command {
	var f secretSetFlags
	cmd := &cobra.Command{
		Use:   "set NAME (--stdin | --from-env VAR | --command CMD) [--host HOST... --header NAME [--format F] | --basic-user USER]",
		Short: "Store a secret, or change one (its placeholder stays the same)",
		Example: `  paddock secret set anthropic --from-env ANTHROPIC_API_KEY
  paddock secret set t --host api.test --header X-Api-Key --stdin
  paddock secret set gh --host github.com --host api.github.com --header Authorization --format 'Bearer %s' --command 'gh auth token'`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			spec, err := f.spec(args[0], cmd.Flags().Changed("cache"), cmd.InOrStdin(), cmd.ErrOrStderr())
			if err != nil {
				return fmt.Errorf("secret set %s: %w", args[0], err)
			}
			secrets, err := secretStore()
			if err != nil {
				return err
			}
			if _, err := secrets.Set(spec); err != nil {
				return fmt.Errorf("secret set: %w", err)
			}
			fmt.Fprintln(cmd.OutOrStdout(), args[0])
			return nil
		},
	}
	fl := cmd.Flags()
	fl.BoolVar(&f.stdin, "stdin", false, "read the value from stdin now (one line; prompted for, unshown, on a terminal)")
	fl.StringVar(&f.fromEnv, "from-env", "", "read the value from the host environment variable `VAR` now")
	fl.StringVar(&f.command, "command", "", "run `CMD` (sh -c, on the host) whenever the value is needed; its output is the value")
	fl.DurationVar(&f.cache, "cache", secret.DefaultCache, "with --command: how long its value is reused (0: run it every time)")
	fl.StringArrayVar(&f.hosts, "host", nil, "a `HOST` the secret is for, HOST:PORT for a port other than 443 (repeatable); makes a custom definition")
	fl.StringVar(&f.header, "header", "", "the `HEADER` that carries the value (custom definitions)")
	fl.StringVar(&f.format, "format", "", "the header's value, `FORMAT` with %s where the value goes (default: the value alone)")
	fl.StringVar(&f.basicUser, "basic-user", "", "send HTTP basic auth, `USER` with the value as password, in Authorization")
	fl.StringVar(&f.env, "env", "", "the sandbox variable `VAR` that holds the placeholder (default: the service's, or NAME upper-cased)")
	fl.BoolVar(&f.query, "query", false, "also replace the placeholder in query strings, not only in headers")
	fl.BoolVar(&f.passPlaceholder, "pass-placeholder", false, "let this secret's placeholder go to other hosts unchanged instead of refusing the request")
	fl.BoolVar(&f.override, "override", false, "set the header on every request to the hosts, in place of a value the request gives it (default: only when absent)")
	return cmd
}

// spec turns the flags into a secret.Spec, reading the value from stdin or
// the environment. cacheSet says whether --cache was given.
func (f secretSetFlags) spec(name string, cacheSet bool, stdin io.Reader, prompt io.Writer) (secret.Spec, error) {
	spec := secret.Spec{Name: name, Env: f.env, Query: f.query, PassElsewhere: f.passPlaceholder}
	sources := 0
	for _, given := range []bool{f.stdin, f.fromEnv != "", f.command != ""} {
		if given {
			sources++
		}
	}
	if sources != 1 {
		return spec, errors.New("give exactly one of --stdin, --from-env VAR and --command CMD")
	}
	if cacheSet && f.command == "" {
		return spec, errors.New("--cache goes with --command")
	}
	if len(f.hosts) == 0 && (f.header != "" || f.format != "" || f.basicUser != "" || f.override) {
		if _, ok := secret.LookupService(name); ok {
			return spec, fmt.Errorf("%s is a built-in service: --header, --format, --basic-user and --override go with --host, for a definition of your own", name)
		}
		return spec, errors.New("--header, --format, --basic-user and --override need the hosts they are for (--host)")
	}
	if len(f.hosts) > 0 {
		spec.Targets = []secret.Target{{Hosts: f.hosts, Header: f.header, Format: f.format, BasicUser: f.basicUser, Override: f.override}}
	}
	switch {
	case f.command != "":
		spec.Source = secret.Source{Kind: secret.FromCommand, Command: f.command, Cache: secret.Duration(f.cache)}
		if cacheSet && f.cache <= 0 {
			spec.Source.Cache = -1 // no cache
		}
	case f.fromEnv != "":
		v, ok := os.LookupEnv(f.fromEnv)
		if !ok {
			return spec, fmt.Errorf("--from-env %s: the variable is not set", f.fromEnv)
		}
		spec.Source, spec.Value = secret.Source{Kind: secret.FromEnv, Env: f.fromEnv}, v
	default:
		v, err := readSecretValue(name, stdin, prompt)
		if err != nil {
			return spec, err
		}
		spec.Source, spec.Value = secret.Source{Kind: secret.FromStdin}, v
	}
	return spec, nil
}

// readSecretValue reads one value from r: prompted for without echo on a
// terminal, else all of r less one trailing newline.
func readSecretValue(name string, r io.Reader, prompt io.Writer) (string, error) {
	if f, ok := r.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprintf(prompt, "Value of secret %s (not shown): ", name)
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(prompt)
		if err != nil {
			return "", fmt.Errorf("read the value: %w", err)
		}
		return string(b), nil
	}
	b, err := io.ReadAll(io.LimitReader(r, secret.MaxValue+3))
	if err != nil {
		return "", fmt.Errorf("read the value from stdin: %w", err)
	}
	if len(b) > secret.MaxValue+2 {
		return "", fmt.Errorf("the value on stdin is longer than %d bytes", secret.MaxValue)
	}
	b = bytes.TrimSuffix(b, []byte("\n"))
	return string(bytes.TrimSuffix(b, []byte("\r"))), nil
}

func secretLsCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "ls",
		Short: "List secrets: hosts, header, sandbox variable and where the value comes from (never the value)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			secrets, err := secretStore()
			if err != nil {
				return err
			}
			list, err := secrets.List()
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				if list == nil {
					list = []secret.Definition{}
				}
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(list)
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tHOSTS\tHEADER\tENV\tSOURCE")
			for _, d := range list {
				// One line per target; the name and the rest on the first.
				for i, t := range d.Targets {
					name, env, src := d.Name, d.Env, d.Source.String()
					if i > 0 {
						name, env, src = "", "", ""
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", name, strings.Join(t.Hosts, ","), t, env, src)
				}
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON (with each secret's placeholder)")
	return cmd
}

func secretRmCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "rm NAME...",
		Short: "Remove secrets, their definitions and stored values",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			secrets, err := secretStore()
			if err != nil {
				return err
			}
			return eachName(args, func(n string) error {
				if err := secrets.Remove(n); err != nil {
					return fmt.Errorf("secret rm: %w", err)
				}
				fmt.Fprintln(cmd.OutOrStdout(), n)
				return nil
			})
		},
	}
}

func secretStore() (*secret.Store, error) {
	h, err := home()
	if err != nil {
		return nil, err
	}
	return secret.Open(h), nil
}

func builtinList() string {
	var names []string
	for _, s := range secret.Services() {
		names = append(names, s.Name+" ("+strings.Join(secret.Definition{Targets: s.Targets}.Hosts(), ", ")+"; "+s.Env+")")
	}
	return strings.Join(names, ", ")
}
