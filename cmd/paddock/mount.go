package main

import (
	"encoding/json"
	"fmt"
	"os"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/paddock-dev/paddock/internal/sandbox"
	"github.com/paddock-dev/paddock/internal/store"
)

func mountCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "mount",
		Short: "Sync more host folders into a sandbox, running or stopped",
		Long: `Besides its workspace, a sandbox can have more host folders synced into it,
each as a copy on the guest's disk kept in step with the host folder (as the
workspace is). A folder is read-only in the guest unless added with :rw;
a read-only folder's changes on the host still reach the guest.`,
	}
	cmd.AddCommand(mountAddCmd(), mountRmCmd(), mountLsCmd())
	return cmd
}

func mountAddCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "add NAME HOSTDIR[:GUESTDIR][:ro|:rw]",
		Short: "Sync a host folder into the sandbox (at the same path unless GUESTDIR is given)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := manager()
			if err != nil {
				return err
			}
			mt, err := sandbox.ParseMount(args[1])
			if err != nil {
				return err
			}
			mt, err = m.AddMount(cmd.Context(), args[0], mt)
			if err != nil {
				return fmt.Errorf("mount add: %w", err)
			}
			fmt.Fprintf(os.Stdout, "%s -> %s (%s)\n", mt.Host, mt.Guest, mode(mt))
			return nil
		},
	}
}

func mountRmCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "rm NAME GUESTDIR|HOSTDIR",
		Short: "Stop syncing a folder; its copy leaves the guest (its last changes reach the host first)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := manager()
			if err != nil {
				return err
			}
			if err := m.RemoveMount(cmd.Context(), args[0], args[1]); err != nil {
				return fmt.Errorf("mount rm: %w", err)
			}
			return nil
		},
	}
}

func mountLsCmd() *cobra.Command {
	var asJSON bool
	ls := &cobra.Command{
		Use:   "ls NAME",
		Short: "List the folders synced into a sandbox, the workspace first",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := manager()
			if err != nil {
				return err
			}
			cfg, err := m.Config(args[0])
			if err != nil {
				return err
			}
			var all []store.Mount
			if cfg.Workspace != "" {
				all = append(all, store.Mount{Host: cfg.Workspace, Guest: cfg.Workspace})
			}
			all = append(all, cfg.Mounts...)
			if asJSON {
				enc := json.NewEncoder(os.Stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(all)
			}
			tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "HOST\tGUEST\tMODE")
			for _, x := range all {
				fmt.Fprintf(tw, "%s\t%s\t%s\n", x.Host, x.Guest, mode(x))
			}
			return tw.Flush()
		},
	}
	ls.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return ls
}

func mode(m store.Mount) string {
	if m.ReadOnly {
		return "ro"
	}
	return "rw"
}
