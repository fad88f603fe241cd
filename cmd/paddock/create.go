package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/paddock-dev/paddock/internal/sandbox"
)

func createCmd() *cobra.Command {
	var o sandbox.CreateOptions
	var image string
	var pf policyFlags // policy.go
	cmd := &cobra.Command{
		Use:   "create [flags]",
		Short: "Create and boot a sandbox on a workspace folder",
		Long: `Create boots a new sandbox and returns once its guest agent answers and its workspace
is copied in, printing its name.

The workspace folder (default: the current directory) appears in the VM at the same
absolute path, as a copy on the VM's disk kept in step with the host folder both ways;
nothing else of the host is visible unless --mount adds it. The VM's root filesystem
is a copy-on-write overlay on the template's image.

The guest trusts paddock's own certificate authority and those --ca and
--trust-host-ca give, besides its image's. Defaults for every create and run can
be set in ~/.config/paddock/config.yaml ($XDG_CONFIG_HOME/paddock/config.yaml):
  ca: [~/corp-root.pem]   # files as --ca; the flags add to them
  trust_host_ca: true     # as --trust-host-ca; --trust-host-ca=false overrides it
A fork (--from) keeps its checkpoint's CAs.`,
		Example: "  paddock create --name web --workspace .\n  paddock create --template tiny --cpus 1 --memory 512M",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := manager()
			if err != nil {
				return err
			}
			o.Env = expandEnv(o.Env)
			if o.Policy, err = pf.policy(); err != nil {
				return fmt.Errorf("create: %w", err)
			}
			if o.From != "" && !anyFlagChanged(cmd, "policy", "allow-host", "deny-host", "allow-cidr", "deny-cidr", "add-host", "dns-upstream") {
				o.Policy = nil // a fork keeps its checkpoint's policy
			}
			if err := sandbox.ApplyUserTrust(&o, cmd.Flags().Changed("trust-host-ca")); err != nil {
				return fmt.Errorf("create: %w", err)
			}
			if o.Template, err = imageTemplate(cmd.Context(), image, o.Template); err != nil {
				return fmt.Errorf("create: %w", err)
			}
			cfg, err := m.Create(cmd.Context(), o)
			if err != nil {
				if o.Name == "" {
					return fmt.Errorf("create: %w", err)
				}
				return fmt.Errorf("create %q: %w", o.Name, err)
			}
			fmt.Fprintln(os.Stdout, cfg.Name)
			noteUnlimited(m, cfg.Name)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Name, "name", "", "sandbox name (default: a generated readable name)")
	f.StringVarP(&o.Workspace, "workspace", "w", "", "folder synced into the VM at the same path, both ways (default: current directory)")
	f.StringArrayVar(&o.Mounts, "mount", nil, "another host folder synced into the VM: HOSTDIR[:GUESTDIR][:ro|:rw], read-only unless :rw (repeatable; see paddock mount)")
	f.StringVar(&o.Template, "template", "", "template to boot (see paddock template ls) (default \"debian\")")
	f.StringVar(&image, "image", "", "boot an OCI image instead: REGISTRY/REPO:TAG, docker-archive:PATH or oci:DIR (imported on first use, cached by digest)")
	f.IntVar(&o.CPUs, "cpus", 0, "virtual CPUs (default: 2, at most the host's)")
	f.StringVar(&o.Memory, "memory", "", "memory, such as 512M or 2G (default \"2G\")")
	f.StringVar(&o.Disk, "disk", "", "root disk size, such as 20G: at least the template's image, at most the free space under PADDOCK_HOME (default: the template's image size)")
	f.StringVar(&o.From, "from", "", "fork a checkpoint: same root files, same running processes (see paddock checkpoint)")
	f.StringArrayVarP(&o.Env, "env", "e", nil, "environment variable for every exec, KEY=VALUE (KEY alone takes the host's value)")
	f.BoolVar(&o.Cold, "cold", false, "boot the kernel instead of restoring the template's saved VM (slower; for debugging)")
	f.BoolVar(&o.NoShareMemory, "no-share-memory", false, "restore into private memory instead of sharing the template's RAM pages copy-on-write")
	f.StringVar(&o.Accel, "accel", "auto", "accelerator: auto (KVM when it really works, else TCG), kvm or tcg")
	f.DurationVar(&o.TTL, "ttl", 0, "remove the sandbox this long after create, such as 30m or 2h (default: never)")
	f.StringArrayVar(&o.Secrets, "secret", nil, "bind a host-side secret (see paddock secret): the guest holds its placeholder, requests to its hosts carry its value (repeatable)")
	f.StringArrayVar(&o.CAFiles, "ca", nil, "PEM file of CA certificates the guest trusts, such as a corporate proxy's: in its system bundle, SSL_CERT_FILE, NODE_EXTRA_CA_CERTS, REQUESTS_CA_BUNDLE and its dockerd (repeatable)")
	f.BoolVar(&o.TrustHostCA, "trust-host-ca", false, "the guest trusts the CAs this host adds to its distribution's: the *.crt files under /usr/local/share/ca-certificates and the file SSL_CERT_FILE names")
	pf.register(f)
	return cmd
}

// expandEnv turns a bare KEY into KEY=VALUE from the host environment, as
// docker does; unset keys are dropped.
func expandEnv(env []string) []string {
	var out []string
	for _, e := range env {
		if strings.Contains(e, "=") {
			out = append(out, e)
			continue
		}
		if v, ok := os.LookupEnv(e); ok {
			out = append(out, e+"="+v)
		}
	}
	return out
}

func anyFlagChanged(cmd *cobra.Command, names ...string) bool {
	for _, n := range names {
		if f := cmd.Flags().Lookup(n); f != nil && f.Changed {
			return true
		}
	}
	return false
}
