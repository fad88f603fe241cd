package template

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/paddock-dev/paddock/internal/store"
)

// BuildOptions says what Build builds and where.
type BuildOptions struct {
	Home     string       // PADDOCK_HOME
	Name     string       // recipe name: templates/NAME.yaml
	Force    bool         // rebuild even when an up-to-date build exists
	Progress io.Writer    // one line per step; nil discards
	Logger   *slog.Logger // nil discards
}

// builder is the state of one build.
type builder struct {
	recipe *Recipe
	home   homeLayout
	out    Layout // the build's temporary directory
	run    runner
	apt    *apt
	steps  *steps
}

// Build builds the template opts.Name unless an up-to-date build exists
// (same recipe hash, complete), and returns it. The build happens in a
// temporary directory under $PADDOCK_HOME/templates that replaces the old
// template atomically when complete; a lock serialises builds of one name.
func Build(ctx context.Context, opts BuildOptions) (*Template, error) {
	if opts.Progress == nil {
		opts.Progress = io.Discard
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if !filepath.IsAbs(opts.Home) {
		return nil, fmt.Errorf("build template %q: PADDOCK_HOME %q is not an absolute path", opts.Name, opts.Home)
	}
	r, err := LoadRecipe(opts.Name)
	if err != nil {
		return nil, err
	}
	h := homeLayout{home: opts.Home}
	st := &steps{name: r.Name, out: opts.Progress, log: opts.Logger}
	lock, err := lockTemplate(h, r.Name, st)
	if err != nil {
		return nil, fmt.Errorf("build template %q: %w", r.Name, err)
	}
	defer lock.Unlock()

	hash := r.Hash()
	if !opts.Force {
		if t, err := openBuilt(h, r, hash); err == nil {
			st.note("up to date (recipe %s)", hash[:12])
			return t, nil
		}
	}
	if r.Rootfs.Kind == KindDebootstrap && os.Geteuid() != 0 {
		return nil, fmt.Errorf("building the %s template %w", r.Name, errNeedRoot)
	}
	start := time.Now()
	err = assemble(h, r, st, opts.Logger, func(b *builder) error { return b.build(ctx, hash) })
	if err != nil {
		return nil, fmt.Errorf("build template %q: %w", r.Name, err)
	}
	st.note("built in %.1fs", time.Since(start).Seconds())
	return Open(opts.Home, r.Name)
}

// build makes the whole template in b.out from the recipe whose hash is
// hash.
func (b *builder) build(ctx context.Context, hash string) error {
	k, err := b.kernelInto(ctx)
	if err != nil {
		return err
	}

	staging := b.out.Staging()
	if err := os.Mkdir(staging, 0o700); err != nil {
		return err
	}
	var owners map[string][2]int
	err = withGuestUmask(func() (err error) {
		switch b.recipe.Rootfs.Kind {
		case KindBusybox:
			owners, err = b.busyboxRootfs(ctx, staging)
		case KindDebootstrap:
			err = b.debootstrapRootfs(ctx, staging)
		}
		return err
	})
	if err != nil {
		return err
	}
	size := b.recipe.DiskBytes()
	err = b.steps.run(fmt.Sprintf("making %s ext4 image", b.recipe.DiskSize), func() error {
		if err := makeImage(ctx, b.run, staging, b.out.Rootfs(), size); err != nil {
			return err
		}
		if os.Geteuid() != 0 {
			fixes := newInodeFixes()
			for rel, o := range owners {
				fixes.owner(rel, o[0], o[1])
			}
			return fixInodes(ctx, b.run, staging, b.out.Rootfs(), fixes)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := removeTree(staging); err != nil {
		return err
	}

	raw, err := yamlOf(b.recipe)
	if err != nil {
		return err
	}
	if err := os.WriteFile(b.out.Recipe(), raw, 0o600); err != nil {
		return err
	}
	// Everything is on disk before template.json says it is complete.
	if err := syncFS(b.out.Dir); err != nil {
		return err
	}
	m := meta{
		Name:                 b.recipe.Name,
		RecipeHash:           hash,
		BuilderVersion:       BuilderVersion,
		KernelPackage:        k.Package,
		KernelPackageVersion: k.Version,
		KernelVersion:        k.KVer,
		Created:              time.Now().UTC().Round(time.Second),
		DiskSize:             size,
		ImageBytes:           diskUsage(b.out.Rootfs()),
	}
	return store.WriteJSON(b.out.Meta(), m)
}

// withGuestUmask runs fill, which makes a root filesystem in a staging
// folder, with umask 022: the guest's files get the modes its packages or
// image say, which the tools that make them (and this package's own 0755
// and 0644) take from the umask. The staging folder itself is 0700. All
// else under PADDOCK_HOME is made under paddock's umask (store.Mask), and
// what fill writes to the cache is made private by mode (cache files).
func withGuestUmask(fill func() error) error {
	defer syscall.Umask(syscall.Umask(0o022))
	return fill()
}

// lockTemplate takes the lock that serialises builds and imports of
// template name, waiting (and saying so) while another holds it.
func lockTemplate(h homeLayout, name string, st *steps) (*store.Lock, error) {
	if err := os.MkdirAll(h.templatesDir(), 0o700); err != nil {
		return nil, err
	}
	lock, err := store.LockFile(h.lock(name), false)
	if err == nil {
		return lock, nil
	}
	st.note("waiting for another build of %s", name)
	if lock, err = store.LockFile(h.lock(name), true); err != nil {
		return nil, fmt.Errorf("lock: %w", err)
	}
	return lock, nil
}

// assemble makes template r.Name: fill writes it into a fresh temporary
// directory under templates/, which then replaces the old template (see
// install). What crashed builds left is removed first; the temporary
// directory is removed whatever happens. The caller holds lockTemplate.
func assemble(h homeLayout, r *Recipe, st *steps, log *slog.Logger, fill func(*builder) error) error {
	removeLeftovers(h, r.Name)
	tmp, err := os.MkdirTemp(h.templatesDir(), buildPattern(r.Name))
	if err != nil {
		return err
	}
	defer removeTree(tmp) // after a successful swap it holds the old template, or nothing
	b := &builder{recipe: r, home: h, out: Layout{Dir: tmp}, run: runner{log: log}, steps: st}
	b.apt = &apt{run: b.run, home: h}
	if err := fill(b); err != nil {
		return err
	}
	return install(tmp, h.template(r.Name).Dir)
}

// install moves the finished build at tmp to dst. An existing template is
// swapped out atomically (renameat2 RENAME_EXCHANGE) and left at tmp for the
// caller to remove; where the filesystem cannot exchange, it is moved aside
// first.
func install(tmp, dst string) error {
	err := unix.Renameat2(unix.AT_FDCWD, tmp, unix.AT_FDCWD, dst, unix.RENAME_EXCHANGE)
	if errors.Is(err, unix.ENOENT) {
		err = os.Rename(tmp, dst)
	} else if err != nil {
		old, merr := os.MkdirTemp(filepath.Dir(dst), oldPattern(filepath.Base(dst)))
		if merr != nil {
			return merr
		}
		if err := os.Rename(dst, filepath.Join(old, "t")); err != nil {
			return err
		}
		err = os.Rename(tmp, dst)
		defer os.RemoveAll(old)
	}
	if err != nil {
		return err
	}
	return syncFS(filepath.Dir(dst))
}

// removeLeftovers removes what crashed builds of name left behind. Called
// with the build lock held, so no other build of name is running.
func removeLeftovers(h homeLayout, name string) {
	for _, pat := range []string{buildPattern(name), oldPattern(name)} {
		matches, _ := filepath.Glob(filepath.Join(h.templatesDir(), pat))
		for _, m := range matches {
			removeTree(m)
		}
	}
}

// syncFS flushes the filesystem holding dir (the image and the hard-linked
// kernel included).
func syncFS(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return unix.Syncfs(int(f.Fd()))
}

// kernelInto fetches the recipe's kernel (cached) and links it and its
// modules into the template being built.
func (b *builder) kernelInto(ctx context.Context) (kernel, error) {
	k, err := b.prepareKernel(ctx)
	if err != nil {
		return k, err
	}
	err = b.steps.run("linking kernel "+k.KVer, func() error {
		if err := linkFile(k.Dir.vmlinux(), b.out.Kernel()); err != nil {
			return err
		}
		return linkTree(k.Dir.modules(k.KVer), b.out.Modules())
	})
	return k, err
}
