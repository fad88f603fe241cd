package main

import (
	"log/slog"
	"os"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/spf13/cobra"

	"github.com/paddock-dev/paddock/internal/mcpserver"
)

func mcpCmd() *cobra.Command {
	var wsRoot string
	var trust trustFlags
	cmd := &cobra.Command{
		Use:   "mcp",
		Short: "Serve sandboxes to an agent as MCP tools, over stdio",
		Long: `Mcp speaks the Model Context Protocol on stdin and stdout, for an agent that runs
outside a sandbox and wants sandboxes as tools:

  claude mcp add paddock -- paddock mcp

Its tools create sandboxes, run commands in them, read and write their files, show
and change their network policy, checkpoint, fork and remove them; its resources are
each sandbox's logs (paddock://sandbox/NAME/logs/exec, console, net). It acts as
the user who runs it and sees every sandbox of PADDOCK_HOME. Sandboxes get no host
folder unless --allow-workspace-root DIR lets sandbox_create share one under DIR.
paddock serve serves the same tools over HTTP at /mcp, per API key. Its sandboxes
trust the CAs of the user's config file and of --ca and --trust-host-ca, as paddock
create's do.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := trust.manager()
			if err != nil {
				return err
			}
			root, err := workspaceRoot(wsRoot) // serve.go
			if err != nil {
				return err
			}
			log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
			s := mcpserver.New(mcpserver.Config{Manager: m, WorkspaceRoot: root, Logger: log, Version: version})
			return s.Run(cmd.Context(), &mcp.StdioTransport{})
		},
	}
	cmd.Flags().StringVar(&wsRoot, "allow-workspace-root", "", "let sandbox_create share a host folder under DIR as the workspace")
	trust.add(cmd.Flags())
	return cmd
}
