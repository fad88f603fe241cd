// Package build makes a template from one of the recipes in templates/:
// the kernel fetched (internal/template/fetch), the root filesystem tree
// made (internal/template/rootfs) and turned into an ext4 image, all in a
// temporary directory that replaces the old template when complete.
package build

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/paddock-dev/paddock/internal/store"
	"github.com/paddock-dev/paddock/internal/template"
	"github.com/paddock-dev/paddock/internal/template/fetch"
	"github.com/paddock-dev/paddock/internal/template/recipe"
	"github.com/paddock-dev/paddock/internal/template/rootfs"
)

// Options says what Build builds and where.
type Options struct {
	Home     string       // PADDOCK_HOME
	Name     string       // recipe name: templates/NAME.yaml
	Force    bool         // rebuild even when an up-to-date build exists
	Progress io.Writer    // one line per step; nil discards
	Logger   *slog.Logger // nil discards
}

// Build builds the template opts.Name unless an up-to-date build exists
// (same recipe hash, complete), and returns it. The build happens in a
// temporary directory under $PADDOCK_HOME/templates that replaces the old
// template atomically when complete; a lock serialises builds of one name.
func Build(ctx context.Context, opts Options) (*template.Template, error) {
	if opts.Progress == nil {
		opts.Progress = io.Discard
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if !filepath.IsAbs(opts.Home) {
		return nil, fmt.Errorf("build template %q: PADDOCK_HOME %q is not an absolute path", opts.Name, opts.Home)
	}
	r, err := recipe.Load(opts.Name)
	if err != nil {
		return nil, err
	}
	h := store.Home(opts.Home)
	st := &template.Steps{Name: r.Name, Out: opts.Progress, Log: opts.Logger}
	lock, err := template.Lock(h, r.Name, st)
	if err != nil {
		return nil, fmt.Errorf("build template %q: %w", r.Name, err)
	}
	defer lock.Unlock()

	hash := r.Hash()
	if !opts.Force {
		if t, err := template.OpenBuilt(h, r, hash); err == nil {
			st.Note("up to date (recipe %s)", hash[:12])
			return t, nil
		}
	}
	if r.Rootfs.Kind == recipe.KindDebootstrap && os.Geteuid() != 0 {
		return nil, fmt.Errorf("building the %s template %w", r.Name, rootfs.ErrNeedRoot)
	}
	start := time.Now()
	err = template.Assemble(h, r.Name, func(out store.TemplateLayout) error {
		run := template.Runner{Log: opts.Logger}
		b := &rootfs.Builder{Recipe: r, Home: h, Out: out, Run: run, Steps: st,
			Apt: &fetch.Apt{Run: run, Home: h, Steps: st}}
		return build(ctx, b, hash)
	})
	if err != nil {
		return nil, fmt.Errorf("build template %q: %w", r.Name, err)
	}
	st.Note("built in %.1fs", time.Since(start).Seconds())
	return template.Open(opts.Home, r.Name)
}

// build makes the whole template in b.Out from the recipe whose hash is
// hash: kernel, root filesystem tree, ext4 image, recipe.yaml and, last,
// template.json.
func build(ctx context.Context, b *rootfs.Builder, hash string) error {
	k, err := b.Apt.KernelInto(ctx, b.Recipe.Kernel.Package, b.Out)
	if err != nil {
		return err
	}
	staging := b.Out.Staging()
	if err := os.Mkdir(staging, 0o700); err != nil {
		return err
	}
	owners, err := tree(ctx, b, staging)
	if err != nil {
		return err
	}
	size := b.Recipe.DiskBytes()
	err = b.Steps.Run(fmt.Sprintf("making %s ext4 image", b.Recipe.DiskSize), func() error {
		return image(ctx, b, staging, size, owners)
	})
	if err != nil {
		return err
	}
	if err := template.RemoveTree(staging); err != nil {
		return err
	}
	return writeMeta(b, k, hash, size)
}

// tree makes the root filesystem tree of the recipe's kind in staging, and
// returns the owners a build without root could not give its files.
func tree(ctx context.Context, b *rootfs.Builder, staging string) (owners map[string][2]int, err error) {
	err = rootfs.WithGuestUmask(func() (err error) {
		switch b.Recipe.Rootfs.Kind {
		case recipe.KindBusybox:
			owners, err = b.Busybox(ctx, staging)
		case recipe.KindDebootstrap:
			err = b.Debootstrap(ctx, staging)
		}
		return err
	})
	return owners, err
}

// image makes the ext4 image of staging; without root, the owners the tree
// could not get are set in the image.
func image(ctx context.Context, b *rootfs.Builder, staging string, size int64, owners map[string][2]int) error {
	if err := rootfs.MakeImage(ctx, b.Run, staging, b.Out.Rootfs(), size); err != nil {
		return err
	}
	if os.Geteuid() == 0 {
		return nil
	}
	fixes := rootfs.NewInodeFixes()
	for rel, o := range owners {
		fixes.Owner(rel, o[0], o[1])
	}
	return rootfs.FixInodes(ctx, b.Run, staging, b.Out.Rootfs(), fixes)
}

// writeMeta saves the defaulted recipe beside the template, flushes it all
// to disk and then writes template.json, which says the template is
// complete.
func writeMeta(b *rootfs.Builder, k fetch.Kernel, hash string, size int64) error {
	raw, err := yaml.Marshal(b.Recipe)
	if err != nil {
		return err
	}
	if err := os.WriteFile(b.Out.Recipe(), raw, 0o600); err != nil {
		return err
	}
	if err := template.SyncFS(b.Out.Dir); err != nil {
		return err
	}
	m := k.Meta(b.Recipe.Name, hash, size, b.Out)
	return store.WriteJSON(b.Out.Meta(), m)
}
