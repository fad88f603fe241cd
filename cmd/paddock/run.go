package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/paddock-dev/paddock/internal/sandbox"
	"github.com/paddock-dev/paddock/internal/secret"
)

// agentPreset is what "paddock run AGENT" starts: the agent's command in
// its unattended mode (the VM is its sandbox), on its own template.
type agentPreset struct {
	template string
	argv     []string
	// secret is the service whose secret the agent needs (see paddock
	// secret): bound by itself when it is set.
	secret string
}

// presets are the agents run knows. Each template is templates/NAME.yaml,
// built on debian with the agent's CLI from npm.
var presets = map[string]agentPreset{
	// Claude Code: skip every permission prompt.
	"claude": {"claude", []string{"claude", "--dangerously-skip-permissions"}, "anthropic"},
	// Codex: no approvals and no Codex-side sandbox (the VM is the sandbox).
	"codex": {"codex", []string{"codex", "--dangerously-bypass-approvals-and-sandbox"}, "openai"},
	// Gemini CLI: approve every action.
	"gemini": {"gemini", []string{"gemini", "--yolo"}, "google"},
	// A login shell in the debian template.
	"shell": {"debian", []string{"bash", "-l"}, ""},
}

func presetNames() string {
	return "claude, codex, gemini, shell"
}

type runOptions struct {
	create      sandbox.CreateOptions
	image       string
	rm          bool
	interactive bool
	user        string
	env         []string
	grace       time.Duration
}

func runCmd() *cobra.Command {
	var o runOptions
	cmd := &cobra.Command{
		Use:   "run [flags] [AGENT] [-- ARG...]",
		Short: "Run a coding agent (or a command) in a fresh sandbox",
		Long: `Run creates a sandbox on the workspace folder and runs a coding agent in it, as
user "agent", in the workspace, on a terminal when stdin is one. AGENT is one of
` + presetNames() + `; each runs in its unattended mode (the VM is its sandbox) on its
own template (templates/AGENT.yaml; shell uses debian). Arguments after -- go to
the agent.

Without AGENT, the arguments after -- are the command: "paddock run --rm -- make
test" is a CI job. Its exit status is paddock's.

An agent's API key stays on the host: when the secret of its service is set
(paddock secret set anthropic|openai|google ...), run binds it, so the VM holds a
placeholder in ANTHROPIC_API_KEY (OPENAI_API_KEY, GEMINI_API_KEY) and the host puts
the real key into the agent's requests to its API. -e ANTHROPIC_API_KEY instead
passes the host's value into the VM itself (not stored on disk).

--rm removes the sandbox when the command ends, also when it fails or paddock
is interrupted (SIGINT, SIGTERM, SIGHUP). Without --rm the sandbox keeps running:
paddock exec NAME ... and paddock rm -f NAME.`,
		Example: `  paddock secret set anthropic --from-env ANTHROPIC_API_KEY && paddock run claude
  paddock run codex --rm
  paddock run gemini -w ../other-repo
  paddock run shell
  paddock run --rm -- make test
  paddock run --rm --template tiny -- sh -c 'exit 3'`,
		RunE: func(cmd *cobra.Command, args []string) error {
			argv, tpl, err := runArgv(args, cmd.ArgsLenAtDash())
			if err != nil {
				return err
			}
			if o.create.Template == "" && o.image == "" {
				o.create.Template = tpl
			}
			if err := bindPresetSecret(&o, args, cmd.ArgsLenAtDash()); err != nil {
				return err
			}
			if err := sandbox.ApplyUserTrust(&o.create, cmd.Flags().Changed("trust-host-ca")); err != nil {
				return err
			}
			code, err := runInSandbox(cmd.Context(), argv, o)
			if err != nil {
				return err
			}
			if code != 0 {
				return exitError{code}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVar(&o.rm, "rm", false, "remove the sandbox when the command ends (also on failure or interrupt)")
	f.StringVarP(&o.create.Workspace, "workspace", "w", "", "folder shared into the VM at the same path, where the command runs (default: current directory)")
	f.StringVar(&o.create.Name, "name", "", "sandbox name (default: a generated readable name)")
	f.StringVar(&o.create.Template, "template", "", "template to boot (default: the agent's; debian for a command)")
	f.StringVar(&o.image, "image", "", "boot an OCI image instead (see paddock create --image)")
	f.IntVar(&o.create.CPUs, "cpus", 0, "virtual CPUs (default: 2, at most the host's)")
	f.StringVar(&o.create.Memory, "memory", "", "memory, such as 512M or 2G (default \"2G\")")
	f.StringVar(&o.create.Disk, "disk", "", "root disk size, such as 20G: at least the template's image, at most the free space under PADDOCK_HOME (default: the template's image size)")
	f.StringVar(&o.create.Accel, "accel", "auto", "accelerator: auto, kvm or tcg")
	f.StringArrayVarP(&o.env, "env", "e", nil, "environment variable for the command, KEY=VALUE (KEY alone takes the host's value)")
	f.StringVarP(&o.user, "user", "u", "", "user in the guest (default: the template's, agent)")
	f.BoolVarP(&o.interactive, "interactive", "i", false, "pass stdin even when it is not a terminal")
	f.DurationVar(&o.grace, "stop-timeout", 10*time.Second, "after an interrupt, how long the command may take to exit before the sandbox goes")
	f.StringArrayVar(&o.create.Secrets, "secret", nil, "bind a host-side secret (see paddock secret); an agent's own is bound when it is set (repeatable)")
	f.StringArrayVar(&o.create.CAFiles, "ca", nil, "PEM file of CA certificates the guest trusts, such as a corporate proxy's (repeatable; see paddock create --help)")
	f.BoolVar(&o.create.TrustHostCA, "trust-host-ca", false, "the guest trusts the CAs this host adds to its distribution's (see paddock create --help)")
	return cmd
}

// runArgv turns run's arguments into the command and its default template.
// dash is the number of arguments before "--" (-1 without "--").
func runArgv(args []string, dash int) ([]string, string, error) {
	before, after := args, []string(nil)
	if dash >= 0 {
		before, after = args[:dash], args[dash:]
	}
	if len(before) == 0 {
		if len(after) == 0 {
			return nil, "", fmt.Errorf("nothing to run: paddock run AGENT (%s) or paddock run -- CMD [ARG...]", presetNames())
		}
		return after, "debian", nil
	}
	p, ok := presets[before[0]]
	if !ok {
		return nil, "", fmt.Errorf("unknown agent %q (known: %s); to run a command put it after --: paddock run -- %s", before[0], presetNames(), strings.Join(before, " "))
	}
	if len(before) > 1 {
		return nil, "", fmt.Errorf("arguments for %s go after --: paddock run %s -- %s", before[0], before[0], strings.Join(before[1:], " "))
	}
	return append(append([]string(nil), p.argv...), after...), p.template, nil
}

// bindPresetSecret binds the secret of the agent named in args, when the
// store has it and neither --secret nor -e already gives the agent its
// key; without one it says how to keep the key on the host.
func bindPresetSecret(o *runOptions, args []string, dash int) error {
	if dash == 0 || len(args) == 0 {
		return nil
	}
	p, ok := presets[args[0]]
	if !ok || p.secret == "" || slices.Contains(o.create.Secrets, p.secret) {
		return nil
	}
	svc, _ := secret.LookupService(p.secret)
	for _, e := range o.env {
		if k, _, _ := strings.Cut(e, "="); k == svc.Env {
			return nil
		}
	}
	h, err := home()
	if err != nil {
		return err
	}
	if _, err := secret.Open(h).Get(p.secret); err != nil {
		fmt.Fprintf(os.Stderr, "paddock: no %s secret is set, so %s has no %s; keep the key on the host with: paddock secret set %s --from-env %s\n", p.secret, args[0], svc.Env, p.secret, svc.Env)
		return nil
	}
	o.create.Secrets = append(o.create.Secrets, p.secret)
	return nil
}

// runInSandbox creates a sandbox, runs argv in its workspace and, with
// --rm, removes it however the command ends.
func runInSandbox(parent context.Context, argv []string, o runOptions) (code int, err error) {
	m, err := manager()
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithCancel(parent)
	defer cancel()

	running, interrupted, stop := runSignals(ctx, cancel, o.grace)
	defer stop()

	o.create.Template, err = imageTemplate(ctx, o.image, o.create.Template)
	if err != nil {
		return 0, fmt.Errorf("run: %w", err)
	}
	cfg, err := m.Create(ctx, o.create)
	if err != nil {
		if cfg.Name == "" || o.create.Name == "" {
			return 0, fmt.Errorf("run: create: %w", err)
		}
		return 0, fmt.Errorf("run: create %q: %w", cfg.Name, err)
	}
	defer removeOrTell(m, cfg.Name, o.rm, &err)
	c, err := m.Dial(cfg.Name)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	tty := term.IsTerminal(int(os.Stdin.Fd())) && term.IsTerminal(int(os.Stdout.Fd()))
	eo := execOptions{
		interactive: tty || o.interactive,
		tty:         tty,
		workdir:     cfg.Workspace,
		env:         o.env,
		user:        o.user,
	}
	close(running)
	code, err = runExec(ctx, c, argv, eo)
	select {
	case sig := <-interrupted:
		if err != nil || ctx.Err() != nil {
			// The command did not finish: report the signal as a shell would.
			return 128 + int(sig.(syscall.Signal)), nil
		}
	default:
	}
	return code, err
}

// runSignals handles run's interrupts. During create they cancel ctx
// (create undoes itself). Once running is closed, the command runs:
// runExec passes SIGINT and SIGTERM to it (without a terminal; on a
// terminal ^C is a keystroke), and it gets grace to exit before paddock
// stops waiting; a second signal stops waiting at once. The first signal
// is sent on interrupted; stop ends the handling.
func runSignals(ctx context.Context, cancel context.CancelFunc, grace time.Duration) (running chan struct{}, interrupted <-chan os.Signal, stop func()) {
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	running = make(chan struct{})
	first := make(chan os.Signal, 1)
	go func() {
		var seen os.Signal
		for {
			select {
			case <-ctx.Done():
				return
			case sig := <-sigs:
				if seen != nil {
					cancel()
					continue
				}
				seen = sig
				first <- sig
				select {
				case <-running:
					time.AfterFunc(grace, cancel)
				default:
					cancel()
				}
			}
		}
	}()
	return running, first, func() { signal.Stop(sigs) }
}

// removeOrTell ends run: with --rm (rm) it removes the sandbox, adding a
// failure to *err; without, it says how to reach the sandbox and remove
// it.
func removeOrTell(m *sandbox.Manager, name string, rm bool, err *error) {
	if !rm {
		fmt.Fprintf(os.Stderr, "paddock: sandbox %s is still running: paddock exec %s -- ..., paddock rm -f %s\n", name, name, name)
		return
	}
	// Not run's context: it may be cancelled by now.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if rerr := m.Remove(ctx, name, true); rerr != nil {
		*err = errors.Join(*err, fmt.Errorf("run: remove sandbox %q: %w", name, rerr))
	}
}
