package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"
)

func logsCmd() *cobra.Command {
	var follow bool
	var kind string
	cmd := &cobra.Command{
		Use:   "logs NAME",
		Short: "Print a sandbox's serial console or exec audit log",
		Long: `Logs prints the guest's serial console (--kind console, the default) or the exec
audit log (--kind exec: one JSON object per command with time, user, argv, cwd,
exit code and duration), or the supervisor's own log (--kind supervisor: each
start's steps and timings, network and exec events). A sandbox restored from a
saved VM or a checkpoint has no boot lines of its own; its console log says so.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			h, err := home()
			if err != nil {
				return err
			}
			m, err := manager()
			if err != nil {
				return err
			}
			if _, err := m.Inspect(args[0]); err != nil {
				return err
			}
			l := h.Sandbox(args[0])
			var path string
			switch kind {
			case "console":
				path = l.ConsoleLog()
			case "exec":
				path = l.ExecLog()
			case "supervisor":
				path = l.SupervisorLog()
			default:
				return fmt.Errorf("invalid --kind %q: use console, exec or supervisor", kind)
			}
			return printLog(cmd.Context(), path, follow)
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing as the log grows")
	cmd.Flags().StringVar(&kind, "kind", "console", "console, exec or supervisor")
	return cmd
}

func printLog(ctx context.Context, path string, follow bool) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) && !follow {
		return nil
	}
	for err != nil && follow {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(200 * time.Millisecond):
		}
		f, err = os.Open(path)
	}
	if err != nil {
		return err
	}
	defer func() { f.Close() }()
	for {
		if _, err := io.Copy(os.Stdout, f); err != nil {
			return err
		}
		if !follow {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(200 * time.Millisecond):
		}
		// Reopen after a rotation.
		if st, err := os.Stat(path); err == nil {
			if cur, _ := f.Stat(); cur != nil && !os.SameFile(st, cur) {
				f.Close()
				if nf, err := os.Open(path); err == nil {
					f = nf
				}
			}
		}
	}
}
