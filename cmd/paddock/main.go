// Command paddock runs disposable QEMU microVM sandboxes for coding agents.
// Each file here wires one verb to the internal packages; the hidden
// __supervise verb is the per-sandbox supervisor process.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/paddock-dev/paddock/internal/sandbox"
	"github.com/paddock-dev/paddock/internal/store"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// exitError carries an exit status to main without printing anything.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func main() {
	// Everything paddock writes is its owner's alone (store.Mask).
	syscall.Umask(store.Mask)
	// The supervisor is started once per sandbox and lives as long as it:
	// run its verb alone, without building the whole command tree, whose
	// allocations would stay in every supervisor's heap.
	if len(os.Args) > 1 && os.Args[1] == sandbox.SuperviseVerb {
		cmd := superviseCmd()
		cmd.SilenceUsage, cmd.SilenceErrors = true, true
		cmd.SetArgs(os.Args[2:])
		exit(cmd.ExecuteContext(context.Background()))
		return
	}
	root := &cobra.Command{
		Use:           "paddock",
		Short:         "Disposable microVM sandboxes for coding agents",
		Long:          "paddock runs each sandbox in its own QEMU microVM with its own kernel.\nOnly the workspace folder is shared with the host.",
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(
		createCmd(), runCmd(), execCmd(), lsCmd(), inspectCmd(), stopCmd(), startCmd(), rmCmd(),
		logsCmd(), templateCmd(), resetCmd(), pauseCmd(), resumeCmd(), checkpointCmd(), benchCmd(), policyCmd(), serveCmd(), mcpCmd(), apikeyCmd(), statsCmd(), mountCmd(), secretCmd(), superviseCmd(),
	)
	exit(root.ExecuteContext(context.Background()))
}

// exit ends the process for a command's result: an exitError's status,
// or 1 after printing any other error.
func exit(err error) {
	var ee exitError
	switch {
	case errors.As(err, &ee):
		os.Exit(ee.code)
	case err != nil:
		fmt.Fprintln(os.Stderr, "paddock:", err)
		os.Exit(1)
	}
}

// home is PADDOCK_HOME, made private (store.Home.Secure) if it is not.
func home() (store.Home, error) {
	h, err := store.DefaultHome()
	if err != nil {
		return "", err
	}
	return h, h.Secure(os.Stderr)
}

func logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

func manager() (*sandbox.Manager, error) {
	h, err := home()
	if err != nil {
		return nil, err
	}
	return sandbox.NewManager(h, logger())
}

// eachName runs f for every name of a multi-name verb (rm NAME...): each
// failure is printed and the others still run; any failure exits 1.
func eachName(names []string, f func(string) error) error {
	failed := false
	for _, name := range names {
		if err := f(name); err != nil {
			fmt.Fprintln(os.Stderr, "paddock:", err)
			failed = true
		}
	}
	if failed {
		return exitError{1}
	}
	return nil
}
