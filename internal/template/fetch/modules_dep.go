package fetch

import (
	"bytes"
	"debug/elf"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/paddock-dev/paddock/internal/store"
	"github.com/paddock-dev/paddock/internal/template"
)

// writeModulesDep generates modules.dep for a modules tree from the
// depends= field each .ko file carries in its .modinfo section (what depmod
// records, without needing kmod on the host). As depmod does, each line
// lists all dependencies, direct and indirect, so that loading them in
// reverse order works.
func writeModulesDep(modDir string) error {
	files := map[string]string{}    // name -> relative path
	direct := map[string][]string{} // name -> dependency names
	err := filepath.WalkDir(filepath.Join(modDir, "kernel"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".ko") {
			return err
		}
		rel, err := filepath.Rel(modDir, p)
		if err != nil {
			return err
		}
		dep, err := modinfoDepends(p)
		if err != nil {
			return fmt.Errorf("%s: %w", rel, err)
		}
		name := template.ModuleName(rel)
		files[name] = filepath.ToSlash(rel)
		direct[name] = dep
		return nil
	})
	if err != nil {
		return err
	}
	lines, err := depLines(files, direct)
	if err != nil {
		return err
	}
	tmp := filepath.Join(modDir, store.ModulesDepFile+".tmp")
	if err := os.WriteFile(tmp, []byte(lines), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(modDir, store.ModulesDepFile))
}

// depLines formats modules.dep from module files (name -> relative path)
// and their direct dependencies (name -> names).
func depLines(files map[string]string, direct map[string][]string) (string, error) {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	var buf bytes.Buffer
	for _, n := range names {
		// A post-order walk gives dependencies first; depmod lists them
		// last-loaded first, so the line is the walk reversed.
		var closure []string
		seen := map[string]bool{n: true}
		var walk func(string) error
		walk = func(m string) error {
			for _, d := range direct[m] {
				if seen[d] {
					continue
				}
				seen[d] = true
				if _, ok := files[d]; !ok {
					return fmt.Errorf("module %s depends on %s, which is not in the tree", m, d)
				}
				if err := walk(d); err != nil {
					return err
				}
				closure = append(closure, files[d])
			}
			return nil
		}
		if err := walk(n); err != nil {
			return "", err
		}
		buf.WriteString(files[n] + ":")
		for i := len(closure) - 1; i >= 0; i-- {
			buf.WriteString(" " + closure[i])
		}
		buf.WriteByte('\n')
	}
	return buf.String(), nil
}

// modinfoDepends reads the depends= entry of a module's .modinfo section.
func modinfoDepends(path string) ([]string, error) {
	f, err := elf.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sec := f.Section(".modinfo")
	if sec == nil {
		return nil, nil
	}
	data, err := sec.Data()
	if err != nil {
		return nil, err
	}
	for _, kv := range bytes.Split(data, []byte{0}) {
		if v, ok := bytes.CutPrefix(kv, []byte("depends=")); ok {
			var deps []string
			for _, d := range strings.Split(string(v), ",") {
				if d = strings.TrimSpace(d); d != "" {
					deps = append(deps, template.ModuleName(d))
				}
			}
			return deps, nil
		}
	}
	return nil, nil
}
