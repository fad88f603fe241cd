// Package recipe is the recipes in templates/ that a template is built
// from: parsing with every problem reported at once, defaults, a base
// recipe's fields inherited, pinned npm packages, and the hash a built
// template is keyed by. templates/debian.yaml documents every field.
package recipe

import (
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"path"
	"regexp"
	"slices"

	"go.yaml.in/yaml/v3"

	"github.com/paddock-dev/paddock/internal/label"
	"github.com/paddock-dev/paddock/internal/store"
)

// Rootfs kinds.
const (
	KindDebootstrap = "debootstrap"
	KindBusybox     = "busybox"
)

// Recipe says how to build one template. templates/debian.yaml documents
// every field and its default.
type Recipe struct {
	Name        string `yaml:"name" json:"name"`
	Description string `yaml:"description,omitempty" json:"description"`
	// Base names another recipe whose kernel, rootfs, user and disk_size
	// this one takes (it may not set them itself); see templates/claude.yaml.
	Base string `yaml:"base,omitempty" json:"base,omitempty"`
	// Npm lists npm packages installed globally after the Debian packages,
	// in order, each pinned to a version and its tarball's integrity, and
	// each installed without host root (see internal/template/rootfs/npm_install.go).
	Npm      []NpmPackage `yaml:"npm,omitempty" json:"npm,omitempty"`
	Kernel   KernelSpec   `yaml:"kernel" json:"kernel"`
	Rootfs   RootfsSpec   `yaml:"rootfs" json:"rootfs"`
	User     UserSpec     `yaml:"user" json:"user"`
	DiskSize string       `yaml:"disk_size" json:"disk_size"`
}

// KernelSpec names the Debian kernel package.
type KernelSpec struct {
	Package string `yaml:"package" json:"package"`
}

// RootfsSpec says how the root filesystem is made.
type RootfsSpec struct {
	Kind     string   `yaml:"kind" json:"kind"`
	Suite    string   `yaml:"suite,omitempty" json:"suite"`
	Variant  string   `yaml:"variant,omitempty" json:"variant"`
	Mirror   string   `yaml:"mirror,omitempty" json:"mirror"`
	Packages []string `yaml:"packages,omitempty" json:"packages"`
}

// UserSpec is the unprivileged guest account.
type UserSpec struct {
	Name  string `yaml:"name" json:"name"`
	UID   int    `yaml:"uid" json:"uid"`
	GID   int    `yaml:"gid" json:"gid"`
	Shell string `yaml:"shell" json:"shell"`
	Sudo  bool   `yaml:"sudo" json:"sudo"`
	// Groups are existing groups (made by the rootfs packages, such as
	// docker) the user is added to (debootstrap only).
	Groups []string `yaml:"groups,omitempty" json:"groups,omitempty"`
}

// Defaults, as documented in templates/debian.yaml.
const (
	DefaultKernelPackage = "linux-image-amd64"
	DefaultSuite         = "bookworm"
	DefaultVariant       = "minbase"
	DefaultMirror        = "http://deb.debian.org/debian"
	DefaultUser          = "agent"
	DefaultUID           = 1000
	DefaultGID           = 1000
	DefaultDiskSize      = "16G"
	MinDiskSize          = 64 << 20
)

// Parse decodes a recipe, fills in defaults and validates it. Every
// problem found (unknown fields included) is reported, joined.
func Parse(data []byte) (*Recipe, error) {
	var r Recipe
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&r); err != nil {
		var te *yaml.TypeError
		if errors.As(err, &te) {
			errs := make([]error, len(te.Errors))
			for i, e := range te.Errors {
				errs[i] = errors.New(e)
			}
			return nil, errors.Join(errs...)
		}
		return nil, err
	}
	if r.Base != "" {
		if err := r.inherit(); err != nil {
			return nil, err
		}
	}
	r.setDefaults()
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return &r, nil
}

func (r *Recipe) setDefaults() {
	if r.Kernel.Package == "" {
		r.Kernel.Package = DefaultKernelPackage
	}
	if r.Rootfs.Kind == "" {
		r.Rootfs.Kind = KindDebootstrap
	}
	if r.Rootfs.Kind == KindDebootstrap {
		if r.Rootfs.Suite == "" {
			r.Rootfs.Suite = DefaultSuite
		}
		if r.Rootfs.Variant == "" {
			r.Rootfs.Variant = DefaultVariant
		}
		if r.Rootfs.Mirror == "" {
			r.Rootfs.Mirror = DefaultMirror
		}
	}
	if r.User.Name == "" {
		r.User.Name = DefaultUser
	}
	if r.User.UID == 0 {
		r.User.UID = DefaultUID
	}
	if r.User.GID == 0 {
		r.User.GID = DefaultGID
	}
	if r.User.Shell == "" {
		r.User.Shell = "/bin/bash"
		if r.Rootfs.Kind == KindBusybox {
			r.User.Shell = "/bin/sh"
		}
	}
	if r.DiskSize == "" {
		r.DiskSize = DefaultDiskSize
	}
}

var (
	debPkgRE  = regexp.MustCompile(`^[a-z0-9][a-z0-9+.-]+$`)
	suiteRE   = regexp.MustCompile(`^[a-z][a-z0-9-]*$`)
	variantOK = map[string]bool{"minbase": true, "buildd": true}
)

// Validate reports every problem in a defaulted recipe, joined.
func (r *Recipe) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }

	if !label.Name(r.Name) {
		bad("name %q: use lowercase letters, digits and '-'", r.Name)
	}
	if !debPkgRE.MatchString(r.Kernel.Package) {
		bad("kernel.package %q is not a Debian package name", r.Kernel.Package)
	}
	switch r.Rootfs.Kind {
	case KindDebootstrap:
		if !suiteRE.MatchString(r.Rootfs.Suite) {
			bad("rootfs.suite %q is not a Debian suite name", r.Rootfs.Suite)
		}
		if !variantOK[r.Rootfs.Variant] {
			bad("rootfs.variant %q: use minbase or buildd", r.Rootfs.Variant)
		}
		if u, err := url.Parse(r.Rootfs.Mirror); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("rootfs.mirror %q: want an http:// or https:// URL", r.Rootfs.Mirror)
		}
		for _, p := range r.Rootfs.Packages {
			if !debPkgRE.MatchString(p) {
				bad("rootfs.packages: %q is not a Debian package name", p)
			}
		}
		if r.User.Sudo && !slices.Contains(r.Rootfs.Packages, "sudo") {
			bad("user.sudo is true but rootfs.packages does not include sudo")
		}
		if len(r.Npm) > 0 && !slices.Contains(r.Rootfs.Packages, "npm") {
			bad("npm packages need the npm package in rootfs.packages")
		}
	case KindBusybox:
		if r.Rootfs.Suite != "" || r.Rootfs.Variant != "" || r.Rootfs.Mirror != "" || len(r.Rootfs.Packages) > 0 {
			bad("rootfs.suite, variant, mirror and packages are for kind debootstrap, not busybox")
		}
		if r.User.Sudo || len(r.User.Groups) > 0 {
			bad("user.sudo and user.groups are for kind debootstrap, not busybox")
		}
		if len(r.Npm) > 0 {
			bad("npm is for kind debootstrap, not busybox")
		}
	default:
		bad("rootfs.kind %q: use debootstrap or busybox", r.Rootfs.Kind)
	}
	if !label.UserName(r.User.Name) || r.User.Name == "root" {
		bad("user.name %q: use a lowercase account name other than root", r.User.Name)
	}
	if r.User.UID < 1 || r.User.UID > 65533 {
		bad("user.uid %d: want 1..65533", r.User.UID)
	}
	if r.User.GID < 1 || r.User.GID > 65533 {
		bad("user.gid %d: want 1..65533", r.User.GID)
	}
	for _, g := range r.User.Groups {
		if !label.UserName(g) {
			bad("user.groups: %q is not a group name", g)
		}
	}
	for i, p := range r.Npm {
		errs = append(errs, p.validate(i)...)
	}
	if !path.IsAbs(r.User.Shell) || path.Clean(r.User.Shell) != r.User.Shell {
		bad("user.shell %q: want an absolute path", r.User.Shell)
	}
	if n, err := ParseSize(r.DiskSize); err != nil {
		bad("disk_size: %v", err)
	} else if n < MinDiskSize {
		bad("disk_size %s: want at least 64M", r.DiskSize)
	}
	return errors.Join(errs...)
}

// DiskBytes is disk_size in bytes (the recipe is validated, so it parses).
func (r *Recipe) DiskBytes() int64 {
	n, _ := ParseSize(r.DiskSize)
	return n
}

// ParseSize parses a size such as 512M or 16G (store.ParseSize, with a
// cap that keeps ext4 images sane).
func ParseSize(s string) (int64, error) {
	n, err := store.ParseSize(s)
	if err != nil || n > 1<<50 {
		return 0, fmt.Errorf("%q is not a size such as 512M or 16G", s)
	}
	return n, nil
}
