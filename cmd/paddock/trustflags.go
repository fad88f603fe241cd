package main

import (
	"fmt"

	"github.com/spf13/pflag"

	"github.com/paddock-dev/paddock/internal/sandbox"
)

// trustFlags are --ca and --trust-host-ca of the servers (serve, mcp):
// what every sandbox they create trusts, with the user's config file.
type trustFlags struct {
	caFiles     []string
	trustHostCA bool
	flags       *pflag.FlagSet
}

func (t *trustFlags) add(f *pflag.FlagSet) {
	t.flags = f
	f.StringArrayVar(&t.caFiles, "ca", nil, "PEM file of CA certificates every sandbox created here trusts, such as a corporate proxy's (repeatable; see paddock create --help)")
	f.BoolVar(&t.trustHostCA, "trust-host-ca", false, "every sandbox created here trusts the CAs this host adds to its distribution's")
}

// manager is the Manager of PADDOCK_HOME with these flags' trust and the
// user's config file's as its default; a CA file that cannot be read
// stops the server before it starts.
func (t *trustFlags) manager() (*sandbox.Manager, error) {
	m, err := manager()
	if err != nil {
		return nil, err
	}
	m.Trust, err = sandbox.DefaultTrust(t.caFiles, t.trustHostCA, t.flags.Changed("trust-host-ca"))
	if err != nil {
		return nil, fmt.Errorf("trust: %w", err)
	}
	return m, nil
}
