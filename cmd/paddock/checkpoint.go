package main

import (
	"encoding/json"
	"fmt"
	"os"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

func checkpointCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "checkpoint SANDBOX NAME",
		Short: "Save a running sandbox's full state, to fork new sandboxes from",
		Long: `Checkpoint saves the memory, device state and root disk of a running sandbox as
NAME. paddock create --from NAME makes a fork: the same files and the same running
processes, continuing where the checkpoint was taken. The sandbox keeps running.

The workspace is the host's folder; the guest's synced copy of it is on the root disk,
so a checkpoint holds the workspace as it was. A fork on the same --workspace syncs
from that state to the folder as it is now. Exec, pause and resume are refused
while the save runs.`,
		Example: "  paddock checkpoint web before-upgrade\n  paddock create --name web2 --from before-upgrade",
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := manager()
			if err != nil {
				return err
			}
			meta, err := m.Checkpoint(cmd.Context(), args[0], args[1])
			if err != nil {
				return err
			}
			fmt.Fprintln(os.Stdout, meta.Name)
			return nil
		},
	}
	cmd.AddCommand(checkpointLsCmd(), checkpointRmCmd())
	return cmd
}

func checkpointLsCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "ls",
		Short: "List checkpoints",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := manager()
			if err != nil {
				return err
			}
			list, err := m.Checkpoints()
			if err != nil {
				return err
			}
			if asJSON {
				if len(list) == 0 {
					fmt.Println("[]")
					return nil
				}
				enc := json.NewEncoder(os.Stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(list)
			}
			tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tSANDBOX\tTEMPLATE\tSIZE\tAGE\tSTATUS")
			var reasons []string
			for _, c := range list {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", c.Name, c.Sandbox, c.Config.Template, humanBytes(c.DiskBytes), age(c.Created), c.State)
				if c.Reason != "" {
					reasons = append(reasons, c.Name+": "+c.Reason)
				}
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if len(reasons) > 0 {
				fmt.Println()
				for _, r := range reasons {
					fmt.Println(r)
				}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func checkpointRmCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "rm NAME...",
		Short: "Remove checkpoints (forks made from them keep working)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := manager()
			if err != nil {
				return err
			}
			return eachName(args, m.RemoveCheckpoint)
		},
	}
}
