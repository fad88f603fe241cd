package template

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/paddock-dev/paddock/internal/store"
	"github.com/paddock-dev/paddock/internal/template/recipe"
)

// SourceSandbox marks, in template.json, a template saved from a
// sandbox's root filesystem (paddock template save).
const SourceSandbox = "sandbox"

// SaveOptions describe a template made from a sandbox's disk.
type SaveOptions struct {
	Home     string
	Name     string    // the new template
	From     *Template // the sandbox's template: kernel, modules, image defaults
	Disk     string    // the sandbox's qcow2 overlay (its backing chain is flattened)
	Sandbox  string    // for the record
	Progress io.Writer
}

// Save makes template Name from a sandbox's disk: the overlay chain is
// flattened into a new sparse ext4 image, the kernel and modules are
// linked from the sandbox's template. The sandbox must not write to its
// disk meanwhile (stopped, or paused after a sync).
func Save(ctx context.Context, o SaveOptions) (*Template, error) {
	fail := func(err error) (*Template, error) {
		return nil, fmt.Errorf("save template %q: %w", o.Name, err)
	}
	if err := store.ValidateName(o.Name); err != nil {
		return fail(err)
	}
	if _, err := recipe.Load(o.Name); err == nil {
		return fail(fmt.Errorf("%q is the name of a built-in recipe: choose another", o.Name))
	}
	h := store.Home(o.Home)
	if err := os.MkdirAll(h.TemplatesDir(), 0o700); err != nil {
		return fail(err)
	}
	lock, err := store.LockFile(h.TemplateLock(o.Name), false)
	if err != nil {
		return fail(err)
	}
	defer lock.Unlock()
	final := h.Template(o.Name)
	if _, err := os.Stat(final.Dir); err == nil {
		return fail(fmt.Errorf("template %q already exists", o.Name))
	}
	tmp, err := os.MkdirTemp(h.TemplatesDir(), store.TemplateBuildPattern(o.Name))
	if err != nil {
		return fail(err)
	}
	defer os.RemoveAll(tmp) // a no-op once renamed
	l := store.TemplateLayout{Dir: tmp}
	st := &Steps{Name: o.Name, Out: o.Progress, Log: slog.New(slog.DiscardHandler)}
	if err := st.Run("linking kernel "+o.From.KernelVersion, func() error {
		if err := LinkFile(o.From.Kernel, l.Kernel()); err != nil {
			return err
		}
		return LinkTree(o.From.ModulesDir, l.Modules())
	}); err != nil {
		return fail(err)
	}
	if err := st.Run("flattening the disk of "+o.Sandbox, func() error {
		// -U: the sandbox's QEMU may hold the image open (paused).
		out, err := exec.CommandContext(ctx, "qemu-img", "convert", "-U", "-O", "raw", o.Disk, l.Rootfs()).CombinedOutput()
		if err != nil {
			return fmt.Errorf("qemu-img convert: %v: %s", err, strings.TrimSpace(string(out)))
		}
		return nil
	}); err != nil {
		return fail(err)
	}
	img, err := os.Stat(l.Rootfs())
	if err != nil {
		return fail(err)
	}
	kpkg, kver, _ := strings.Cut(o.From.KernelPackage, " ")
	created := time.Now().UTC()
	sum := sha256.Sum256([]byte(fmt.Sprintf("%d %s %s %s %d", recipe.BuilderVersion, SourceSandbox, o.Sandbox, created, img.Size())))
	m := Meta{
		Name:                 o.Name,
		RecipeHash:           hex.EncodeToString(sum[:]),
		BuilderVersion:       recipe.BuilderVersion,
		KernelPackage:        kpkg,
		KernelPackageVersion: kver,
		KernelVersion:        o.From.KernelVersion,
		Created:              created,
		DiskSize:             img.Size(),
		ImageBytes:           DiskUsage(l.Rootfs()),
		Source:               SourceSandbox,
		Image:                o.From.Image,
		SavedFrom:            o.Sandbox,
	}
	if err := store.WriteJSON(l.Meta(), m); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp, final.Dir); err != nil {
		return fail(err)
	}
	return openSaved(h, o.Name)
}

// openSaved opens a template made by Save.
func openSaved(h store.Home, n string) (*Template, error) {
	l := h.Template(n)
	var m Meta
	if err := store.ReadJSON(l.Meta(), &m); err != nil {
		return nil, err
	}
	if m.Source != SourceSandbox {
		return nil, fmt.Errorf("template %q was not saved from a sandbox: %w", n, os.ErrNotExist)
	}
	if what := missing(l, m); what != "" {
		return nil, fmt.Errorf("template %q is damaged (%s): remove it with paddock template rm %s and save it again", n, what, n)
	}
	t := m.Template(l)
	t.Name = n
	return t, nil
}

// listSaved describes the templates made by Save.
func listSaved(h store.Home) []Info {
	entries, _ := os.ReadDir(h.TemplatesDir())
	var out []Info
	for _, e := range entries {
		n := e.Name()
		if !e.IsDir() || strings.HasPrefix(n, ".") {
			continue
		}
		l := h.Template(n)
		var m Meta
		if err := store.ReadJSON(l.Meta(), &m); err != nil || m.Source != SourceSandbox {
			continue
		}
		info := Info{
			Name: n, Description: "saved from sandbox " + m.SavedFrom, RecipeHash: m.RecipeHash,
			DiskSize: m.DiskSize, Status: "damaged", KernelVersion: m.KernelVersion, Created: m.Created,
			DiskUsage: DiskUsage(l.Dir), ImageUsage: DiskUsage(l.Rootfs()), Source: SourceSandbox,
		}
		if _, err := openSaved(h, n); err == nil {
			info.Built, info.Status = true, "built"
		}
		out = append(out, info)
	}
	return out
}
