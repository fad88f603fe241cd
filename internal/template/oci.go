package template

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/paddock-dev/paddock/internal/label"
	"github.com/paddock-dev/paddock/internal/store"
)

// An imported template is an OCI image made bootable: its layers flattened
// (mutate.Extract) into an ext4 root image, with the same Debian kernel as
// the recipe templates. The agent comes from the initramfs and the kernel
// modules are loaded from there too, so an image needs no init, no udev and
// no paddock files. Its template.json has source "oci" and the image's
// defaults (Env, WorkingDir, User), which the supervisor applies to every
// exec. docs/IMAGES.md is the user's guide.

// SourceOCI marks an imported template in template.json.
const SourceOCI = "oci"

// ImageInfo is what an imported template keeps of its image.
type ImageInfo struct {
	Source     string   `json:"source"`      // as given: docker-archive:PATH, oci:DIR, or REF
	Digest     string   `json:"digest"`      // the image's config digest: its identity across sources
	Manifest   string   `json:"manifest"`    // manifest digest where the source has one
	Env        []string `json:"env"`         // the image's Env
	WorkingDir string   `json:"working_dir"` // the image's WorkingDir
	User       string   `json:"user"`        // the image's User ("" means root)
	Entrypoint []string `json:"entrypoint,omitempty"`
	Cmd        []string `json:"cmd,omitempty"`
	Bytes      int64    `json:"bytes"` // unpacked file bytes
}

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
func Import(ctx context.Context, opts ImportOptions) (*Template, error) {
	if opts.Progress == nil {
		opts.Progress = io.Discard
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.DiskSize == "" {
		opts.DiskSize = DefaultDiskSize
	}
	if !filepath.IsAbs(opts.Home) {
		return nil, fmt.Errorf("import %s: PADDOCK_HOME %q is not an absolute path", opts.Source, opts.Home)
	}
	size, err := ParseSize(opts.DiskSize)
	if err != nil {
		return nil, fmt.Errorf("import %s: disk size: %w", opts.Source, err)
	}
	if size < minDiskSize {
		return nil, fmt.Errorf("import %s: disk size %s: want at least 64M", opts.Source, opts.DiskSize)
	}
	label := opts.Name
	if label == "" {
		label = "image"
	}
	st := &steps{name: label, out: opts.Progress, log: opts.Logger}
	h := homeLayout{home: opts.Home}
	var img v1.Image
	var info ImageInfo
	err = st.run("reading image "+opts.Source, func() (err error) {
		img, info, err = openImage(ctx, opts.Source)
		return err
	})
	if err != nil {
		// Offline, --image uses what an earlier import of the same
		// reference left, as docker run does with a pulled image.
		if opts.Name == "" && unreachable(err) {
			if t := lastImport(h, opts.Source); t != nil {
				st.note("the registry cannot be reached, so using %s, imported from %s on %s (image %s)",
					t.Name, opts.Source, t.Created.Local().Format("2006-01-02 15:04"), shortDigest(t.Image.Digest))
				return t, nil
			}
		}
		return nil, fmt.Errorf("import %s: %w", opts.Source, err)
	}
	if opts.Name == "" {
		opts.Name = ImageTemplateName(info.Digest)
		st.name = opts.Name
	}
	if err := checkImportName(opts.Name); err != nil {
		return nil, fmt.Errorf("import %s: %w", opts.Source, err)
	}

	lock, err := lockTemplate(h, opts.Name, st)
	if err != nil {
		return nil, fmt.Errorf("import %s as template %q: %w", opts.Source, opts.Name, err)
	}
	defer lock.Unlock()
	if t, err := openImported(h, opts.Name); err == nil && !opts.Force {
		if t.Image.Digest == info.Digest {
			st.note("up to date (image %s)", shortDigest(info.Digest))
			return t, nil
		}
		return nil, fmt.Errorf("template %q holds another image (%s, from %s): use --force to replace it, or another name", opts.Name, shortDigest(t.Image.Digest), t.Image.Source)
	}
	start := time.Now()
	r := &Recipe{Name: opts.Name, Kernel: KernelSpec{Package: DefaultKernelPackage}, DiskSize: opts.DiskSize}
	err = assemble(h, r, st, opts.Logger, func(b *builder) error { return b.importImage(ctx, img, &info, size) })
	if err != nil {
		return nil, fmt.Errorf("import %s as template %q: %w", opts.Source, opts.Name, err)
	}
	st.note("imported in %.1fs", time.Since(start).Seconds())
	return openImported(h, opts.Name)
}

func checkImportName(n string) error {
	if !label.Name(n) {
		return fmt.Errorf("template name %q: use lowercase letters, digits and '-'", n)
	}
	for _, r := range Names() {
		if r == n {
			return fmt.Errorf("template name %q is a recipe's (templates/%s.yaml): pick another name", n, n)
		}
	}
	return nil
}

func shortDigest(d string) string {
	if len(d) > 19 {
		return d[:19]
	}
	return d
}

// openImage resolves a source to an image for linux/amd64 and reads its
// config.
func openImage(ctx context.Context, source string) (v1.Image, ImageInfo, error) {
	info := ImageInfo{Source: source}
	var img v1.Image
	var err error
	switch {
	case strings.HasPrefix(source, "docker-archive:"):
		p := strings.TrimPrefix(source, "docker-archive:")
		if _, serr := os.Stat(p); serr != nil {
			return nil, info, fmt.Errorf("docker archive %s: %w", p, serr)
		}
		img, err = tarball.ImageFromPath(p, nil)
		if err != nil {
			return nil, info, fmt.Errorf("docker archive %s is not a readable image tarball (docker save output): %w", p, err)
		}
	case strings.HasPrefix(source, "oci:"):
		img, err = ociLayoutImage(strings.TrimPrefix(source, "oci:"))
		if err != nil {
			return nil, info, err
		}
	case strings.Contains(source, ":") && !strings.Contains(source, "/") && !strings.Contains(source, "."):
		return nil, info, fmt.Errorf("unknown image source %q: use docker-archive:PATH, oci:DIR or a registry reference such as registry.example.com/team/app:1", source)
	default:
		ref, perr := name.ParseReference(source)
		if perr != nil {
			return nil, info, fmt.Errorf("image reference %q: %w", source, perr)
		}
		img, err = remote.Image(ref, remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain),
			remote.WithPlatform(v1.Platform{OS: "linux", Architecture: "amd64"}))
		if err != nil {
			return nil, info, registryError(ref, err)
		}
		if d, derr := img.Digest(); derr == nil {
			info.Manifest = d.String()
		}
	}
	cfgName, err := img.ConfigName()
	if err != nil {
		return nil, info, fmt.Errorf("image config: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, info, fmt.Errorf("image config: %w", err)
	}
	if cf.OS != "" && cf.OS != "linux" || cf.Architecture != "" && cf.Architecture != "amd64" {
		return nil, info, fmt.Errorf("the image is for %s/%s; paddock runs linux/amd64 images", cf.OS, cf.Architecture)
	}
	if _, err := img.Layers(); err != nil {
		return nil, info, fmt.Errorf("image layers: %w", err)
	}
	info.Digest = cfgName.String()
	info.Env = cf.Config.Env
	info.WorkingDir = cf.Config.WorkingDir
	info.User = cf.Config.User
	info.Entrypoint = cf.Config.Entrypoint
	info.Cmd = cf.Config.Cmd
	return img, info, nil
}

// ociLayoutImage picks the image of an OCI layout: the only one, else the
// linux/amd64 one.
func ociLayoutImage(dir string) (v1.Image, error) {
	p, err := layout.FromPath(dir)
	if err != nil {
		return nil, fmt.Errorf("oci layout %s: %w (want a directory with oci-layout and index.json)", dir, err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		return nil, fmt.Errorf("oci layout %s: %w", dir, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("oci layout %s: index.json: %w", dir, err)
	}
	var picks []v1.Descriptor
	for _, d := range im.Manifests {
		if !d.MediaType.IsImage() && !d.MediaType.IsIndex() {
			continue
		}
		if len(im.Manifests) == 1 || d.Platform == nil || (d.Platform.OS == "linux" && d.Platform.Architecture == "amd64") {
			picks = append(picks, d)
		}
	}
	if len(picks) != 1 {
		return nil, fmt.Errorf("oci layout %s holds %d candidate images: want exactly one (or one for linux/amd64)", dir, len(picks))
	}
	if picks[0].MediaType.IsIndex() {
		child, err := idx.ImageIndex(picks[0].Digest)
		if err != nil {
			return nil, fmt.Errorf("oci layout %s: %w", dir, err)
		}
		return platformImage(child, dir)
	}
	img, err := idx.Image(picks[0].Digest)
	if err != nil {
		return nil, fmt.Errorf("oci layout %s: %w", dir, err)
	}
	return img, nil
}

func platformImage(idx v1.ImageIndex, dir string) (v1.Image, error) {
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	for _, d := range im.Manifests {
		if d.Platform != nil && d.Platform.OS == "linux" && d.Platform.Architecture == "amd64" {
			return idx.Image(d.Digest)
		}
	}
	return nil, fmt.Errorf("oci layout %s: no linux/amd64 image in its index", dir)
}

// registryError says what a registry's refusal means.
func registryError(ref name.Reference, err error) error {
	var te *transport.Error
	if errors.As(err, &te) {
		for _, d := range te.Errors {
			switch d.Code {
			case transport.ManifestUnknownErrorCode, transport.NameUnknownErrorCode:
				return fmt.Errorf("%s: not found in registry %s (%s): check the repository and tag", ref, ref.Context().RegistryStr(), d.Message)
			case transport.UnauthorizedErrorCode, transport.DeniedErrorCode:
				return fmt.Errorf("registry %s refused %s (%s): log in with \"docker login %s\" (paddock reads ~/.docker/config.json)", ref.Context().RegistryStr(), ref, d.Code, ref.Context().RegistryStr())
			}
		}
		switch te.StatusCode {
		case 401, 403:
			return fmt.Errorf("registry %s refused %s (HTTP %d): log in with \"docker login %s\" (paddock reads ~/.docker/config.json)", ref.Context().RegistryStr(), ref, te.StatusCode, ref.Context().RegistryStr())
		case 404:
			return fmt.Errorf("%s: not found in registry %s: check the repository and tag", ref, ref.Context().RegistryStr())
		}
		return fmt.Errorf("registry %s: %s: %w", ref.Context().RegistryStr(), ref, err)
	}
	return fmt.Errorf("pull %s from %s: %w", ref, ref.Context().RegistryStr(), err)
}

// importImage makes the template in b.out from img.
func (b *builder) importImage(ctx context.Context, img v1.Image, info *ImageInfo, size int64) error {
	k, err := b.kernelInto(ctx)
	if err != nil {
		return err
	}
	staging := b.out.Staging()
	if err := os.Mkdir(staging, 0o700); err != nil {
		return err
	}
	x, err := newExtractor(staging)
	if err != nil {
		return err
	}
	defer x.close()
	err = b.steps.run("unpacking layers", func() error {
		return withGuestUmask(func() error {
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
	err = b.steps.run(fmt.Sprintf("making %s ext4 image (%s of files)", b.recipe.DiskSize, store.FormatSize(x.bytes)), func() error {
		if err := makeImage(ctx, b.run, staging, b.out.Rootfs(), size); err != nil {
			return err
		}
		return fixInodes(ctx, b.run, staging, b.out.Rootfs(), x.fixes)
	})
	if err != nil {
		return err
	}
	if err := removeTree(staging); err != nil {
		return err
	}
	if err := syncFS(b.out.Dir); err != nil {
		return err
	}
	m := meta{
		Name:                 b.recipe.Name,
		RecipeHash:           importHash(info.Digest, k.KVer, size),
		BuilderVersion:       BuilderVersion,
		KernelPackage:        k.Package,
		KernelPackageVersion: k.Version,
		KernelVersion:        k.KVer,
		Created:              time.Now().UTC().Round(time.Second),
		DiskSize:             size,
		ImageBytes:           diskUsage(b.out.Rootfs()),
		Source:               SourceOCI,
		Image:                info,
	}
	return store.WriteJSON(b.out.Meta(), m)
}

// importHash identifies what an import produced, as a recipe hash does for
// a build (saved VM states are keyed by it).
func importHash(digest, kver string, size int64) string {
	b, _ := json.Marshal([]any{BuilderVersion, SourceOCI, digest, kver, size})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// unreachable reports whether err says a registry could not be reached at
// all (refused, no route, no DNS answer, timed out), as opposed to an
// answer from it such as "not found" or "unauthorized".
func unreachable(err error) bool {
	var te *transport.Error
	if errors.As(err, &te) {
		return false
	}
	var ne net.Error
	return errors.As(err, &ne)
}

// lastImport returns the newest intact template imported from source, or
// nil.
func lastImport(h homeLayout, source string) *Template {
	var last *Template
	for n, m := range importedMetas(h) {
		if m.Image.Source != source {
			continue
		}
		if t, err := openImported(h, n); err == nil && (last == nil || t.Created.After(last.Created)) {
			last = t
		}
	}
	return last
}

// openImported returns the imported template name.
func openImported(h homeLayout, n string) (*Template, error) {
	l := h.template(n)
	var m meta
	if err := store.ReadJSON(l.Meta(), &m); err != nil {
		return nil, err
	}
	if m.Source != SourceOCI || m.Image == nil {
		return nil, fmt.Errorf("template %q is not an imported image", n)
	}
	damaged := func(what string) error {
		return fmt.Errorf("template %q is damaged (%s): import it again with \"paddock template import --force %s %s\"", n, what, n, m.Image.Source)
	}
	if what := missing(l, m); what != "" {
		return nil, damaged(what)
	}
	t := m.template(l)
	t.Name = n
	return t, nil
}

// importedMetas yields the name and template.json of each imported
// template: a directory without a recipe whose template.json says source
// oci. Whether it is intact is openImported's to say.
func importedMetas(h homeLayout) iter.Seq2[string, meta] {
	return func(yield func(string, meta) bool) {
		entries, _ := os.ReadDir(h.templatesDir())
		recipes := map[string]bool{}
		for _, n := range Names() {
			recipes[n] = true
		}
		for _, e := range entries {
			n := e.Name()
			if !e.IsDir() || strings.HasPrefix(n, ".") || recipes[n] {
				continue
			}
			var m meta
			if err := store.ReadJSON(h.template(n).Meta(), &m); err != nil || m.Source != SourceOCI || m.Image == nil {
				continue
			}
			if !yield(n, m) {
				return
			}
		}
	}
}

// listImported describes the imported templates (directories without a
// recipe whose template.json says source oci).
func listImported(h homeLayout) []Info {
	var out []Info
	for n, m := range importedMetas(h) {
		l := h.template(n)
		info := Info{
			Name: n, Description: "image " + m.Image.Source + " (" + shortDigest(m.Image.Digest) + ")",
			RecipeHash: m.RecipeHash, DiskSize: m.DiskSize, Status: "damaged",
			KernelVersion: m.KernelVersion, Created: m.Created,
			DiskUsage: diskUsage(l.Dir), ImageUsage: diskUsage(l.Rootfs()), Source: SourceOCI,
		}
		if _, err := openImported(h, n); err == nil {
			info.Built, info.Status = true, "built"
		}
		out = append(out, info)
	}
	return out
}

// RemoveImported deletes an imported template (recipe templates are
// rebuilt, not removed). Sandboxes made from it keep running on their
// open files but cannot start again.
func RemoveImported(home, n string) error {
	h := homeLayout{home: home}
	if _, err := openImported(h, n); err != nil {
		var m meta
		if rerr := store.ReadJSON(h.template(n).Meta(), &m); rerr != nil || (m.Source != SourceOCI && m.Source != SourceSandbox) {
			return fmt.Errorf("template %q is not an imported image or a saved sandbox (built-in templates are rebuilt, not removed)", n)
		}
	}
	lock, err := store.LockFile(h.lock(n), true)
	if err != nil {
		return err
	}
	defer lock.Unlock()
	old, err := os.MkdirTemp(h.templatesDir(), oldPattern(n))
	if err != nil {
		return err
	}
	if err := os.Rename(h.template(n).Dir, filepath.Join(old, "t")); err != nil {
		os.Remove(old)
		return err
	}
	return removeTree(old)
}

// ctxReader reads r until ctx ends (an interrupted import stops).
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(b []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(b)
}
