// Package oci makes a template from an OCI image (a registry reference, a
// docker-archive tarball or an OCI layout): resolved for linux/amd64,
// layers flattened into a staging folder that no entry can escape, then
// the same kernel and ext4 image as a recipe template. docs/IMAGES.md is
// the user's guide.
package oci

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/paddock-dev/paddock/internal/label"
	"github.com/paddock-dev/paddock/internal/store"
	"github.com/paddock-dev/paddock/internal/template"
	"github.com/paddock-dev/paddock/internal/template/fetch"
	"github.com/paddock-dev/paddock/internal/template/recipe"
	"github.com/paddock-dev/paddock/internal/template/rootfs"
)

// An imported template is an OCI image made bootable: its layers flattened
// (mutate.Extract) into an ext4 root image, with the same Debian kernel as
// the recipe templates. The agent comes from the initramfs and the kernel
// modules are loaded from there too, so an image needs no init, no udev and
// no paddock files. Its template.json has source "oci" and the image's
// defaults (Env, WorkingDir, User), which the supervisor applies to every
// exec. docs/IMAGES.md is the user's guide.

// ImportOptions says what Import imports and where.
type ImportOptions struct {
	Home   string // PADDOCK_HOME
	Name   string // template name; "" derives img-DIGEST12 from the image
	Source string // docker-archive:PATH, oci:DIR, or a registry reference
	// Force re-imports even when the template holds this image already, and
	// replaces a template of that name holding another image.
	Force    bool
	DiskSize string       // size the guest sees; default 16G (sparse)
	Progress io.Writer    // one line per step; nil discards
	Logger   *slog.Logger // nil discards
}

// ImageTemplateName is the name --image gives the template of an image.
func ImageTemplateName(digest string) string {
	_, hex, _ := strings.Cut(digest, ":")
	if len(hex) > 12 {
		hex = hex[:12]
	}
	return "img-" + hex
}

// Import makes a template from an OCI image. The image is resolved first
// (a broken tarball, a missing tag or a refusing registry fail here, before
// anything is written); the template is assembled in a temporary directory
// that replaces any old one atomically when complete, so a failed import
// leaves nothing behind. An import of an image the template holds already
// returns at once. Without a name (create --image), a registry that cannot
// be reached at all gives the newest template imported from the same
// source, with a note.
func Import(ctx context.Context, opts ImportOptions) (*template.Template, error) {
	size, err := opts.check()
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", opts.Source, err)
	}
	h := store.Home(opts.Home)
	st := &template.Steps{Name: cmp.Or(opts.Name, "image"), Out: opts.Progress, Log: opts.Logger}
	var img v1.Image
	var info template.ImageInfo
	err = st.Run("reading image "+opts.Source, func() (err error) {
		img, info, err = openImage(ctx, opts.Source)
		return err
	})
	if err != nil {
		if t := lastReachable(h, st, opts, err); t != nil {
			return t, nil
		}
		return nil, fmt.Errorf("import %s: %w", opts.Source, err)
	}
	if opts.Name == "" {
		opts.Name = ImageTemplateName(info.Digest)
		st.Name = opts.Name
	}
	if err := checkImportName(opts.Name); err != nil {
		return nil, fmt.Errorf("import %s: %w", opts.Source, err)
	}
	t, err := importLocked(ctx, h, st, opts, img, &info, size)
	if err != nil {
		return nil, fmt.Errorf("import %s as template %q: %w", opts.Source, opts.Name, err)
	}
	return t, nil
}

// check fills in opts' defaults and checks them; it returns the disk size
// in bytes.
func (opts *ImportOptions) check() (int64, error) {
	if opts.Progress == nil {
		opts.Progress = io.Discard
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.DiskSize == "" {
		opts.DiskSize = recipe.DefaultDiskSize
	}
	if !filepath.IsAbs(opts.Home) {
		return 0, fmt.Errorf("PADDOCK_HOME %q is not an absolute path", opts.Home)
	}
	size, err := recipe.ParseSize(opts.DiskSize)
	if err != nil {
		return 0, fmt.Errorf("disk size: %w", err)
	}
	if size < recipe.MinDiskSize {
		return 0, fmt.Errorf("disk size %s: want at least 64M", opts.DiskSize)
	}
	return size, nil
}

// lastReachable is what an import without a name falls back on when the
// registry cannot be reached at all: the newest template an earlier import
// of the same source left (as docker run uses a pulled image), or nil.
func lastReachable(h store.Home, st *template.Steps, opts ImportOptions, err error) *template.Template {
	if opts.Name != "" || !unreachable(err) {
		return nil
	}
	t := template.LastImport(h, opts.Source)
	if t != nil {
		st.Note("the registry cannot be reached, so using %s, imported from %s on %s (image %s)",
			t.Name, opts.Source, t.Created.Local().Format("2006-01-02 15:04"), template.ShortDigest(t.Image.Digest))
	}
	return t
}

// importLocked takes the template's lock and, unless it holds the image
// already, assembles it from img.
func importLocked(ctx context.Context, h store.Home, st *template.Steps, opts ImportOptions, img v1.Image, info *template.ImageInfo, size int64) (*template.Template, error) {
	lock, err := template.Lock(h, opts.Name, st)
	if err != nil {
		return nil, err
	}
	defer lock.Unlock()
	if t, err := template.OpenImported(h, opts.Name); err == nil && !opts.Force {
		if t.Image.Digest == info.Digest {
			st.Note("up to date (image %s)", template.ShortDigest(info.Digest))
			return t, nil
		}
		return nil, fmt.Errorf("template %q holds another image (%s, from %s): use --force to replace it, or another name", opts.Name, template.ShortDigest(t.Image.Digest), t.Image.Source)
	}
	start := time.Now()
	err = template.Assemble(h, opts.Name, func(out store.TemplateLayout) error {
		im := importer{
			name: opts.Name, diskSize: opts.DiskSize, out: out, run: template.Runner{Log: opts.Logger}, steps: st,
			apt: &fetch.Apt{Run: template.Runner{Log: opts.Logger}, Home: h, Steps: st},
		}
		return im.importImage(ctx, img, info, size)
	})
	if err != nil {
		return nil, err
	}
	st.Note("imported in %.1fs", time.Since(start).Seconds())
	return template.OpenImported(h, opts.Name)
}

func checkImportName(n string) error {
	if !label.Name(n) {
		return fmt.Errorf("template name %q: use lowercase letters, digits and '-'", n)
	}
	if slices.Contains(recipe.Names(), n) {
		return fmt.Errorf("template name %q is a recipe's (templates/%s.yaml): pick another name", n, n)
	}
	return nil
}

// importer is the state of one import.
type importer struct {
	name     string
	diskSize string
	out      store.TemplateLayout // the import's temporary directory
	run      template.Runner
	apt      *fetch.Apt
	steps    *template.Steps
}

// importImage makes the template in im.out from img, with the recipes'
// default kernel.
func (im *importer) importImage(ctx context.Context, img v1.Image, info *template.ImageInfo, size int64) error {
	k, err := im.apt.KernelInto(ctx, recipe.DefaultKernelPackage, im.out)
	if err != nil {
		return err
	}
	staging := im.out.Staging()
	if err := os.Mkdir(staging, 0o700); err != nil {
		return err
	}
	x, err := newExtractor(staging)
	if err != nil {
		return err
	}
	defer x.close()
	err = im.steps.Run("unpacking layers", func() error {
		return rootfs.WithGuestUmask(func() error {
			rc := mutate.Extract(img)
			defer rc.Close()
			if err := x.extract(ctxReader{ctx, rc}); err != nil {
				return err
			}
			return x.addGuestDirs()
		})
	})
	if err != nil {
		return err
	}
	info.Bytes = x.bytes
	err = im.steps.Run(fmt.Sprintf("making %s ext4 image (%s of files)", im.diskSize, store.FormatSize(x.bytes)), func() error {
		if err := rootfs.MakeImage(ctx, im.run, staging, im.out.Rootfs(), size); err != nil {
			return err
		}
		return rootfs.FixInodes(ctx, im.run, staging, im.out.Rootfs(), x.fixes)
	})
	if err != nil {
		return err
	}
	if err := template.RemoveTree(staging); err != nil {
		return err
	}
	if err := template.SyncFS(im.out.Dir); err != nil {
		return err
	}
	m := k.Meta(im.name, importHash(info.Digest, k.KVer, size), size, im.out)
	m.Source, m.Image = template.SourceOCI, info
	return store.WriteJSON(im.out.Meta(), m)
}

// importHash identifies what an import produced, as a recipe hash does for
// a build (saved VM states are keyed by it).
func importHash(digest, kver string, size int64) string {
	b, _ := json.Marshal([]any{recipe.BuilderVersion, template.SourceOCI, digest, kver, size})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
