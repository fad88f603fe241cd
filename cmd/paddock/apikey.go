package main

import (
	"fmt"
	"os"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/paddock-dev/paddock/internal/apikey"
)

func apikeyCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "apikey",
		Short: "Manage the API keys of paddock serve",
	}
	cmd.AddCommand(
		&cobra.Command{
			Use:   "create NAME",
			Short: "Make a key and print it (the only time it is shown; it is stored hashed)",
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				keys, err := keyStore()
				if err != nil {
					return err
				}
				k, err := keys.Create(args[0])
				if err != nil {
					return fmt.Errorf("apikey create: %w", err)
				}
				fmt.Println(k)
				return nil
			},
		},
		&cobra.Command{
			Use:   "ls",
			Short: "List keys by name (never their values)",
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, args []string) error {
				keys, err := keyStore()
				if err != nil {
					return err
				}
				list, err := keys.List()
				if err != nil {
					return err
				}
				tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "NAME\tCREATED")
				for _, k := range list {
					fmt.Fprintf(tw, "%s\t%s\n", k.Name, k.Created.Format("2006-01-02 15:04"))
				}
				return tw.Flush()
			},
		},
		&cobra.Command{
			Use:   "rm NAME...",
			Short: "Remove keys: requests with them are refused at once",
			Args:  cobra.MinimumNArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				keys, err := keyStore()
				if err != nil {
					return err
				}
				return eachName(args, func(n string) error {
					if err := keys.Remove(n); err != nil {
						return fmt.Errorf("apikey rm: %w", err)
					}
					fmt.Println(n)
					return nil
				})
			},
		},
	)
	return cmd
}

func keyStore() (*apikey.Store, error) {
	h, err := home()
	if err != nil {
		return nil, err
	}
	return apikey.Open(h), nil
}
