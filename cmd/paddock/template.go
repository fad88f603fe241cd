package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/paddock-dev/paddock/internal/template"
	"github.com/paddock-dev/paddock/internal/template/build"
)

func templateCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "template",
		Short: "Build and list templates (kernel + root filesystem images)",
	}
	cmd.AddCommand(templateBuildCmd(), templateLsCmd(), templateImportCmd(), templateRmCmd(), templateSaveCmd())
	return cmd
}

func templateBuildCmd() *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "build [NAME]",
		Short: "Build a template from its recipe (cached by the recipe's hash)",
		Long: `Build makes a template from its recipe in templates/NAME.yaml: the Debian kernel
(downloaded and unpacked, never installed on the host) and an ext4 root image.
A build whose recipe has not changed is a cache hit and returns at once.
Without NAME it builds the default template, debian.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			h, err := home()
			if err != nil {
				return err
			}
			name := "debian"
			if len(args) == 1 {
				name = args[0]
			}
			ctx, stop := interruptible(cmd.Context())
			defer stop()
			t, err := build.Build(ctx, build.Options{
				Home: string(h), Name: name, Force: force, Progress: os.Stderr, Logger: logger(),
			})
			if err != nil {
				return fmt.Errorf("template build %s: %w", name, err)
			}
			fmt.Fprintln(os.Stdout, t.Name)
			return nil
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "rebuild even if the recipe has not changed")
	return cmd
}

func templateLsCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "ls",
		Short: "List templates: built or not, kernel, disk use",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			h, err := home()
			if err != nil {
				return err
			}
			list, err := template.List(string(h))
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(list)
			}
			tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
			// DISK is the root image's blocks on the host, shared by every
			// sandbox of the template (each adds its overlay: paddock ls).
			fmt.Fprintln(tw, "NAME\tSTATUS\tKERNEL\tDISK\tCREATED")
			for _, t := range list {
				built, created, disk := t.Status, "-", "-"
				if t.Built {
					created, disk = age(t.Created), humanBytes(t.ImageUsage)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", t.Name, built, t.KernelVersion, disk, created)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func templateSaveCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "save SANDBOX NAME",
		Short: "Turn a sandbox's root filesystem into a new template",
		Long: `Save copies the sandbox's root filesystem (everything but the workspace) into a new
template NAME with the same kernel. A running sandbox is synced and paused for the copy,
then resumed. Sandboxes created from NAME start from its own saved VM, made on first use.`,
		Example: "  paddock template save web my-env\n  paddock create --template my-env",
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := manager()
			if err != nil {
				return err
			}
			t, err := m.SaveTemplate(cmd.Context(), args[0], args[1], os.Stderr)
			if err != nil {
				return err
			}
			fmt.Fprintln(os.Stdout, t.Name)
			return nil
		},
	}
}

// interruptible is ctx, cancelled by Ctrl-C or SIGTERM, for the commands
// that build in a temporary folder: they stop and remove it rather than
// die and leave it (and whatever a root filesystem holds) behind.
func interruptible(ctx context.Context) (context.Context, context.CancelFunc) {
	return signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
}
