package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/paddock-dev/paddock/internal/template"
	"github.com/paddock-dev/paddock/internal/template/oci"
)

func templateImportCmd() *cobra.Command {
	var o oci.ImportOptions
	cmd := &cobra.Command{
		Use:   "import NAME SOURCE",
		Short: "Make a template from an OCI image (registry, docker-archive or OCI layout)",
		Long: `Import makes a template from a container image: its layers flattened into an ext4
root image booted with the same kernel as every template. paddock's agent comes
from the initramfs, so the image needs no init. SOURCE is one of
  docker-archive:PATH   a "docker save" tarball
  oci:DIR               an OCI image layout directory
  REGISTRY/REPO:TAG     a registry reference (credentials from ~/.docker/config.json)
The image's Env, WorkingDir and User become the defaults of paddock exec in its
sandboxes (User unset means root). Importing the same image again is a no-op.
See docs/IMAGES.md.`,
		Example: "  paddock template import myimg docker-archive:./img.tar\n  paddock template import app oci:./layout\n  paddock template import dev localhost:5000/team/dev:3",
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			h, err := home()
			if err != nil {
				return err
			}
			o.Home, o.Name, o.Source, o.Progress, o.Logger = string(h), args[0], args[1], os.Stderr, logger()
			ctx, stop := interruptible(cmd.Context())
			defer stop()
			t, err := oci.Import(ctx, o)
			if err != nil {
				return fmt.Errorf("template import: %w", err)
			}
			fmt.Fprintln(os.Stdout, t.Name)
			return nil
		},
	}
	cmd.Flags().BoolVar(&o.Force, "force", false, "import again, replacing a template of that name")
	cmd.Flags().StringVar(&o.DiskSize, "disk-size", "16G", "root filesystem size the guest sees (sparse on the host)")
	return cmd
}

func templateRmCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "rm NAME...",
		Short: "Remove imported image templates and templates saved from sandboxes",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			h, err := home()
			if err != nil {
				return err
			}
			return eachName(args, func(n string) error {
				if err := template.RemoveImported(string(h), n); err != nil {
					return fmt.Errorf("template rm %s: %w", n, err)
				}
				fmt.Fprintln(os.Stdout, n)
				return nil
			})
		},
	}
}

// imageTemplate returns the template for --image ref: the imported template
// holding that image (found by digest), importing it first if there is
// none. Without ref it returns tpl unchanged.
func imageTemplate(ctx context.Context, ref, tpl string) (string, error) {
	if ref == "" {
		return tpl, nil
	}
	if tpl != "" {
		return "", errors.New("--image and --template exclude each other")
	}
	h, err := home()
	if err != nil {
		return "", err
	}
	ctx, stop := interruptible(ctx)
	defer stop()
	t, err := oci.Import(ctx, oci.ImportOptions{Home: string(h), Source: ref, Progress: os.Stderr, Logger: logger()})
	if err != nil {
		return "", err
	}
	return t.Name, nil
}

// printJSON prints v indented (an empty list as []).
func printJSON(v any) error {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
