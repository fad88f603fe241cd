package main

import (
	"encoding/json"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/paddock-dev/paddock/internal/store"
	"github.com/paddock-dev/paddock/internal/termsafe"
)

func lsCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:     "ls",
		Aliases: []string{"list", "ps"},
		Short:   "List sandboxes and their status",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := manager()
			if err != nil {
				return err
			}
			list, err := m.List()
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(os.Stdout)
				enc.SetIndent("", "  ")
				if len(list) == 0 {
					fmt.Println("[]")
					return nil
				}
				return enc.Encode(list)
			}
			// A reason may carry an error the guest's bytes are in.
			out := termsafe.Writer(os.Stdout)
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tSTATUS\tTEMPLATE\tDISK\tAGE\tWORKSPACE")
			pooled := false
			var reasons []string
			for _, s := range list {
				ws := s.Workspace
				if s.Pool != "" {
					ws, pooled = "(warm pool, idle)", true
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", s.Name, s.State, s.Template, humanBytes(s.DiskBytes), age(s.Created), ws)
				if s.Reason != "" {
					reasons = append(reasons, s.Name+": "+s.Reason)
				}
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			// The sentences go under the table, one a line, so its
			// columns stay narrow.
			if len(reasons) > 0 {
				fmt.Fprintln(out)
				for _, r := range reasons {
					fmt.Fprintln(out, r)
				}
			}
			if pooled {
				fmt.Println("\nwarm pool: idle sandboxes that paddock serve --warm keeps for API creates to claim;\nthe next serve adopts them, paddock rm removes them.")
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func age(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := time.Since(t)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1fG", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1fM", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%dK", n>>10)
	}
	return store.FormatSize(n)
}
