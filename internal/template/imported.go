package template

import (
	"fmt"
	"iter"
	"os"
	"path/filepath"
	"strings"

	"github.com/paddock-dev/paddock/internal/store"
	"github.com/paddock-dev/paddock/internal/template/recipe"
)

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

func ShortDigest(d string) string {
	if len(d) > 19 {
		return d[:19]
	}
	return d
}

// LastImport returns the newest intact template imported from source, or
// nil.
func LastImport(h store.Home, source string) *Template {
	var last *Template
	for n, m := range importedMetas(h) {
		if m.Image.Source != source {
			continue
		}
		if t, err := OpenImported(h, n); err == nil && (last == nil || t.Created.After(last.Created)) {
			last = t
		}
	}
	return last
}

// OpenImported returns the imported template name.
func OpenImported(h store.Home, n string) (*Template, error) {
	l := h.Template(n)
	var m Meta
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
	t := m.Template(l)
	t.Name = n
	return t, nil
}

// importedMetas yields the name and template.json of each imported
// template: a directory without a recipe whose template.json says source
// oci. Whether it is intact is OpenImported's to say.
func importedMetas(h store.Home) iter.Seq2[string, Meta] {
	return func(yield func(string, Meta) bool) {
		entries, _ := os.ReadDir(h.TemplatesDir())
		recipes := map[string]bool{}
		for _, n := range recipe.Names() {
			recipes[n] = true
		}
		for _, e := range entries {
			n := e.Name()
			if !e.IsDir() || strings.HasPrefix(n, ".") || recipes[n] {
				continue
			}
			var m Meta
			if err := store.ReadJSON(h.Template(n).Meta(), &m); err != nil || m.Source != SourceOCI || m.Image == nil {
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
func listImported(h store.Home) []Info {
	var out []Info
	for n, m := range importedMetas(h) {
		l := h.Template(n)
		info := Info{
			Name: n, Description: "image " + m.Image.Source + " (" + ShortDigest(m.Image.Digest) + ")",
			RecipeHash: m.RecipeHash, DiskSize: m.DiskSize, Status: "damaged",
			KernelVersion: m.KernelVersion, Created: m.Created,
			DiskUsage: DiskUsage(l.Dir), ImageUsage: DiskUsage(l.Rootfs()), Source: SourceOCI,
		}
		if _, err := OpenImported(h, n); err == nil {
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
	h := store.Home(home)
	if _, err := OpenImported(h, n); err != nil {
		var m Meta
		if rerr := store.ReadJSON(h.Template(n).Meta(), &m); rerr != nil || (m.Source != SourceOCI && m.Source != SourceSandbox) {
			return fmt.Errorf("template %q is not an imported image or a saved sandbox (built-in templates are rebuilt, not removed)", n)
		}
	}
	lock, err := store.LockFile(h.TemplateLock(n), true)
	if err != nil {
		return err
	}
	old, err := os.MkdirTemp(h.TemplatesDir(), store.TemplateOldPattern(n))
	if err != nil {
		lock.Unlock()
		return err
	}
	if err := os.Rename(h.Template(n).Dir, filepath.Join(old, "t")); err != nil {
		os.Remove(old)
		lock.Unlock()
		return err
	}
	lock.Remove()
	return RemoveTree(old)
}
