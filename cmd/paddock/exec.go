package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	"golang.org/x/term"
	"google.golang.org/grpc/status"

	agentv1 "github.com/paddock-dev/paddock/api/agent/v1"
	"github.com/paddock-dev/paddock/internal/sandbox"
	"github.com/paddock-dev/paddock/internal/termsafe"
)

type execOptions struct {
	interactive bool
	tty         bool
	workdir     string
	env         []string
	user        string
}

func execCmd() *cobra.Command {
	var o execOptions
	cmd := &cobra.Command{
		Use:   "exec [flags] NAME -- CMD [ARG...]",
		Short: "Run a command in a running sandbox",
		Long: `Exec runs a command inside the sandbox's VM, by default as user "agent" in the
workspace folder. Its stdout and stderr stay separate, its exit status becomes
paddock's, and signals paddock receives (Ctrl-C) are passed to it.`,
		Example: "  paddock exec web -- git status\n  paddock exec -it web -- bash\n  paddock exec -u root web -- apt-get update",
		Args:    cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := manager()
			if err != nil {
				return err
			}
			c, err := m.Dial(args[0])
			if err != nil {
				return err
			}
			defer c.Close()
			argv := args[1:]
			if argv[0] == "--" {
				argv = argv[1:]
			}
			if len(argv) == 0 {
				return fmt.Errorf("no command given: paddock exec %s -- CMD [ARG...]", args[0])
			}
			code, err := runExec(cmd.Context(), c, argv, o)
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
	f.SetInterspersed(false)
	f.BoolVarP(&o.interactive, "interactive", "i", false, "keep stdin open and pass it to the command")
	f.BoolVarP(&o.tty, "tty", "t", false, "run the command on a terminal that follows this one's size")
	f.StringVarP(&o.workdir, "workdir", "w", "", "working directory in the guest (default: the workspace)")
	f.StringArrayVarP(&o.env, "env", "e", nil, "environment variable, KEY=VALUE (KEY alone takes the host's value)")
	f.StringVarP(&o.user, "user", "u", "", "user name or uid in the guest (default: agent)")
	return cmd
}

// runExec runs argv in the sandbox and returns its exit status. With a
// terminal it puts this one in raw mode and passes its size on; without,
// it passes the signals paddock gets (Ctrl-C) on to the command.
func runExec(ctx context.Context, c *sandbox.Client, argv []string, o execOptions) (int, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	req := &agentv1.ExecRequest{
		Id: sandbox.NewExecID(), Argv: argv, Env: expandEnv(o.env), Cwd: o.workdir, User: o.user, Tty: o.tty,
	}
	stdinFd := int(os.Stdin.Fd())
	if o.tty {
		if !term.IsTerminal(stdinFd) && o.interactive {
			return 0, errors.New("the input device is not a TTY: drop -t or run from a terminal")
		}
		if w, h, err := term.GetSize(int(os.Stdout.Fd())); err == nil {
			req.Cols, req.Rows = uint32(w), uint32(h)
		}
		if o.interactive {
			old, err := term.MakeRaw(stdinFd)
			if err != nil {
				return 0, fmt.Errorf("set terminal raw: %w", err)
			}
			defer term.Restore(stdinFd, old)
		}
	}
	// The guest's bytes reach this terminal as they are only on the
	// terminal the user asked for.
	streams := sandbox.Streams{Stdout: os.Stdout, Stderr: os.Stderr}
	if !o.tty {
		streams.Stdout, streams.Stderr = termsafe.Writer(os.Stdout), termsafe.Writer(os.Stderr)
	}
	if o.interactive {
		streams.Stdin = os.Stdin
	}
	sigs := make(chan os.Signal, 8)
	defer signal.Stop(sigs)
	started := func() {
		if o.tty {
			signal.Notify(sigs, syscall.SIGWINCH)
		} else {
			signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2)
		}
		go func() {
			for sig := range sigs {
				if sig == syscall.SIGWINCH {
					if w, h, err := term.GetSize(int(os.Stdout.Fd())); err == nil {
						c.Agent.Resize(ctx, &agentv1.ResizeRequest{Id: req.Id, Rows: uint32(h), Cols: uint32(w)})
					}
					continue
				}
				c.Agent.Signal(ctx, &agentv1.SignalRequest{Id: req.Id, Signal: int32(sig.(syscall.Signal))})
			}
		}()
	}
	exit, err := c.Run(ctx, req, streams, started)
	if err != nil {
		return 0, grpcError(err)
	}
	if exit.Error != "" {
		fmt.Fprintln(os.Stderr, "paddock:", termsafe.Escape(exit.Error))
	}
	return exit.Code, nil
}

// grpcError turns a gRPC status into its message alone.
func grpcError(err error) error {
	if st, ok := status.FromError(err); ok {
		return errors.New(st.Message())
	}
	return err
}
