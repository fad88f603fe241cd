package main

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"
)

func stopCmd() *cobra.Command {
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "stop NAME",
		Short: "Shut a sandbox down cleanly (forced after the timeout)",
		Long:  "Stop powers the VM off cleanly; its root filesystem changes are kept for paddock start.",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := manager()
			if err != nil {
				return err
			}
			forced, err := m.Stop(cmd.Context(), args[0], timeout)
			if err != nil {
				return err
			}
			if forced {
				fmt.Fprintf(os.Stderr, "paddock: %s did not power off within %s and was forced off\n", args[0], timeout)
			}
			return nil
		},
	}
	cmd.Flags().DurationVarP(&timeout, "time", "t", 10*time.Second, "how long to wait for a clean shutdown before forcing")
	return cmd
}

func startCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "start NAME",
		Short: "Boot a stopped sandbox again",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := manager()
			if err != nil {
				return err
			}
			return m.Start(cmd.Context(), args[0])
		},
	}
}

func rmCmd() *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:     "rm [-f] NAME...",
		Aliases: []string{"remove"},
		Short:   "Remove sandboxes and everything they have on disk",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := manager()
			if err != nil {
				return err
			}
			return eachName(args, func(name string) error { return m.Remove(cmd.Context(), name, force) })
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "remove a running sandbox too (kills it)")
	return cmd
}

func resetCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "reset NAME",
		Short: "Put a sandbox's root filesystem and memory back to its template",
		Long: `Reset discards everything the sandbox changed outside the workspace (root
filesystem, running processes, memory) and restores the template's saved VM. The
name, settings and workspace stay; the workspace is the host's folder and is untouched.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := manager()
			if err != nil {
				return err
			}
			return m.Reset(cmd.Context(), args[0])
		},
	}
}

func pauseCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "pause NAME",
		Short: "Freeze a sandbox's vCPUs, keeping its memory",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := manager()
			if err != nil {
				return err
			}
			return m.Pause(cmd.Context(), args[0])
		},
	}
}

func resumeCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "resume NAME",
		Short: "Continue a paused sandbox",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := manager()
			if err != nil {
				return err
			}
			return m.Resume(cmd.Context(), args[0])
		},
	}
}
