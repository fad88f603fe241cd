package template

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"time"

	"github.com/paddock-dev/paddock/internal/store"
	"github.com/paddock-dev/paddock/internal/template/recipe"
)

// Template is a built template: what a sandbox boots.
type Template struct {
	Name          string
	Dir           string
	Kernel        string // uncompressed vmlinux
	ModulesDir    string // the kernel's /lib/modules/KVER tree
	Rootfs        string // ext4 image; a sandbox disk is a qcow2 overlay on it
	KernelVersion string // e.g. 6.1.0-56-amd64
	KernelPackage string // e.g. linux-image-6.1.0-56-amd64 6.1.192-2
	DiskSize      int64  // the image's apparent size in bytes
	RecipeHash    string
	Created       time.Time
	Recipe        *recipe.Recipe // nil for an imported image
	Image         *ImageInfo     // an imported image's identity and exec defaults; nil for a recipe's
}

// Meta is template.json, written last: its presence with the recipe's hash
// means the template is complete.
type Meta struct {
	Name                 string     `json:"name"`
	RecipeHash           string     `json:"recipe_hash"`
	BuilderVersion       int        `json:"builder_version"`
	KernelPackage        string     `json:"kernel_package"`
	KernelPackageVersion string     `json:"kernel_package_version"`
	KernelVersion        string     `json:"kernel_version"`
	Created              time.Time  `json:"created"`
	DiskSize             int64      `json:"disk_size"`            // apparent size of root.ext4
	ImageBytes           int64      `json:"image_bytes"`          // its blocks on disk when built
	Source               string     `json:"source,omitempty"`     // "oci" for an imported image, else a recipe's
	Image                *ImageInfo `json:"image,omitempty"`      // the imported image (imported.go, package oci)
	SavedFrom            string     `json:"saved_from,omitempty"` // the sandbox of a saved template (saved.go)
}

// Open returns the built template name, or an error that says how to build
// it.
func Open(home, name string) (*Template, error) {
	r, err := recipe.Load(name)
	if err != nil {
		if t, serr := openSaved(store.Home(home), name); serr == nil || !errors.Is(serr, os.ErrNotExist) {
			return t, serr
		}
		if t, ierr := OpenImported(store.Home(home), name); ierr == nil || !errors.Is(ierr, os.ErrNotExist) {
			return t, ierr
		}
		return nil, err
	}
	return OpenBuilt(store.Home(home), r, r.Hash())
}

// OpenBuilt checks that the template directory is complete and built from
// a recipe with the given hash.
func OpenBuilt(h store.Home, r *recipe.Recipe, hash string) (*Template, error) {
	l := h.Template(r.Name)
	var m Meta
	if err := store.ReadJSON(l.Meta(), &m); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("template %q is not built: run \"paddock template build %s\"", r.Name, r.Name)
		}
		return nil, fmt.Errorf("template %q is damaged (%v): run \"paddock template build --force %s\"", r.Name, err, r.Name)
	}
	if m.RecipeHash != hash {
		return nil, fmt.Errorf("template %q is out of date with its recipe: run \"paddock template build %s\"", r.Name, r.Name)
	}
	damaged := func(what string) error {
		return fmt.Errorf("template %q is damaged (%s): run \"paddock template build --force %s\"", r.Name, what, r.Name)
	}
	if what := missing(l, m); what != "" {
		return nil, damaged(what)
	}
	t := m.Template(l)
	t.Name, t.Recipe = r.Name, r
	return t, nil
}

// Info describes one template for "paddock template ls".
type Info struct {
	Name          string    `json:"name"`
	Description   string    `json:"description"`
	Built         bool      `json:"built"`
	Status        string    `json:"status"` // built, not built, out of date, damaged
	RecipeHash    string    `json:"recipe_hash"`
	KernelVersion string    `json:"kernel_version,omitempty"`
	DiskSize      int64     `json:"disk_size"`   // what the guest sees
	ImageUsage    int64     `json:"image_usage"` // root image's blocks allocated on the host
	DiskUsage     int64     `json:"disk_usage"`  // the whole template dir's (the kernel and modules are hard links into the cache)
	Created       time.Time `json:"created,omitzero"`
	Source        string    `json:"source,omitempty"` // "oci" for an imported image
}

// List describes every known template, sorted by name.
func List(home string) ([]Info, error) {
	h := store.Home(home)
	var infos []Info
	var errs []error
	for _, name := range recipe.Names() {
		r, err := recipe.Load(name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		info := Info{Name: name, Description: r.Description, RecipeHash: r.Hash(), DiskSize: r.DiskBytes(), Status: "not built"}
		l := h.Template(name)
		var m Meta
		if err := store.ReadJSON(l.Meta(), &m); err == nil {
			info.KernelVersion = m.KernelVersion
			info.Created = m.Created
			info.DiskUsage = DiskUsage(l.Dir)
			info.ImageUsage = DiskUsage(l.Rootfs())
			if _, err := OpenBuilt(h, r, info.RecipeHash); err == nil {
				info.Built, info.Status = true, "built"
			} else if m.RecipeHash != info.RecipeHash {
				info.Status = "out of date"
			} else {
				info.Status = "damaged"
			}
		}
		infos = append(infos, info)
	}
	infos = append(infos, listImported(h)...)
	infos = append(infos, listSaved(h)...)
	sort.Slice(infos, func(i, j int) bool { return infos[i].Name < infos[j].Name })
	return infos, errors.Join(errs...)
}

// BuildID identifies one build of a template: a rebuild, even from the
// same recipe, gets another.
func BuildID(t *Template) string {
	return t.RecipeHash[:min(16, len(t.RecipeHash))] + "@" + t.Created.UTC().Format(time.RFC3339Nano)
}

// missing says what a template directory whose template.json says m
// lacks ("" when it is complete).
func missing(l store.TemplateLayout, m Meta) string {
	img, err := os.Stat(l.Rootfs())
	if err != nil || img.Size() != m.DiskSize {
		return "root image missing or resized"
	}
	if _, err := os.Stat(l.Kernel()); err != nil {
		return "no kernel"
	}
	if _, err := os.Stat(l.Modules() + "/" + store.ModulesDepFile); err != nil {
		return "no modules.dep"
	}
	return ""
}

// template is the Template a complete directory l with template.json m
// describes.
func (m Meta) Template(l store.TemplateLayout) *Template {
	return &Template{
		Name:          m.Name,
		Dir:           l.Dir,
		Kernel:        l.Kernel(),
		ModulesDir:    l.Modules(),
		Rootfs:        l.Rootfs(),
		KernelVersion: m.KernelVersion,
		KernelPackage: m.KernelPackage + " " + m.KernelPackageVersion,
		DiskSize:      m.DiskSize,
		RecipeHash:    m.RecipeHash,
		Created:       m.Created,
		Image:         m.Image,
	}
}
