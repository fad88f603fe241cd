package main

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/paddock-dev/paddock/internal/sandbox"
	"github.com/paddock-dev/paddock/internal/termsafe"
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
			m, err := manager()
			if err != nil {
				return err
			}
			if _, err := m.Inspect(args[0]); err != nil {
				return err
			}
			files, err := m.LogFiles(args[0], sandbox.LogKind(kind))
			if err != nil {
				return err
			}
			out := termsafe.Writer(os.Stdout)
			return sandbox.TailLog(cmd.Context(), files, follow, func(line []byte) { out.Write(line) })
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing as the log grows")
	cmd.Flags().StringVar(&kind, "kind", "console", "console, exec or supervisor")
	return cmd
}
