package main

import (
	"encoding/json"
	"os"

	"github.com/spf13/cobra"

	"github.com/paddock-dev/paddock/internal/sandbox"
)

func inspectCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "inspect NAME",
		Short: "Print a sandbox's settings and live facts as JSON",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := manager()
			if err != nil {
				return err
			}
			info, err := m.Inspect(args[0])
			if err != nil {
				return err
			}
			enc := json.NewEncoder(os.Stdout)
			enc.SetIndent("", "  ")
			// The extra CAs by subject and fingerprint, never as PEM.
			return enc.Encode(struct {
				sandbox.Info
				CACerts []sandbox.CAInfo `json:"ca_certs,omitempty"`
			}{info, m.SandboxCAs(args[0])})
		},
	}
}
