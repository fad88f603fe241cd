package main

import (
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"github.com/paddock-dev/paddock/internal/sandbox"
	"github.com/paddock-dev/paddock/internal/store"
	"github.com/paddock-dev/paddock/internal/supervisor"
)

// superviseCmd is the hidden mode in which paddock runs as one sandbox's
// supervisor, started detached by create and start. fd 3 is the pipe on
// which it reports readiness.
func superviseCmd() *cobra.Command {
	var homeDir, agent string
	cmd := &cobra.Command{
		Use:    sandbox.SuperviseVerb + " NAME",
		Hidden: true,
		Args:   cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			log := slog.New(slog.NewTextHandler(supervisor.LogWriter(), &slog.HandlerOptions{Level: slog.LevelInfo})).With("sandbox", args[0])
			ready := os.NewFile(3, "ready")
			return supervisor.Run(cmd.Context(), supervisor.Options{
				Home:      store.Home(homeDir),
				Name:      args[0],
				AgentPath: agent,
				Ready:     ready,
				Logger:    log,
			})
		},
	}
	cmd.Flags().StringVar(&homeDir, "home", "", "PADDOCK_HOME")
	cmd.Flags().StringVar(&agent, "agent", "", "guest agent binary")
	return cmd
}
