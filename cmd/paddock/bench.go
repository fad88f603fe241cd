package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/paddock-dev/paddock/internal/bench"
)

func benchCmd() *cobra.Command {
	var o bench.Options
	var out string
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure create, exec, reset, checkpoint, fork and memory on this machine",
		Long: `Bench runs the paddock binary as a user would and reports medians (JSON):
create to first exec (restored and cold), exec round trip, stop, rm, reset,
pause+resume, checkpoint, fork to first exec, and the host memory (PSS) of 1, 5
and 10 idle sandboxes, 3 s after the last create, and of the 10 again once the
newest has idled 30 s. It makes and removes its own sandboxes.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			exe, err := os.Executable()
			if err != nil {
				return err
			}
			o.Bin, o.Log = exe, os.Stderr
			if o.Workspace == "" {
				if o.Workspace, err = os.MkdirTemp("", "paddock-bench-"); err != nil {
					return err
				}
				defer os.RemoveAll(o.Workspace)
				os.Chown(o.Workspace, 1000, 1000)
			}
			res, err := bench.Run(cmd.Context(), o)
			if err != nil {
				return err
			}
			if out != "" {
				if err := bench.Write(out, res); err != nil {
					return err
				}
				fmt.Fprintln(os.Stderr, "wrote", out)
			}
			enc := json.NewEncoder(os.Stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(res)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Template, "template", "tiny", "template to measure")
	f.IntVar(&o.Runs, "runs", 10, "samples per operation")
	f.StringVar(&o.Workspace, "workspace", "", "workspace folder (default: a temporary one)")
	f.StringVar(&out, "out", "", "also write the JSON to this file")
	return cmd
}
