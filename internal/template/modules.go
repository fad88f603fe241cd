package template

import (
	"bufio"
	"bytes"
	"debug/elf"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// moduleName is the canonical name of a module file or name: base name
// without .ko, '-' as '_' (the kernel treats them alike).
func moduleName(s string) string {
	s = filepath.Base(s)
	s = strings.TrimSuffix(s, ".ko")
	return strings.ReplaceAll(s, "-", "_")
}

// moduleDeps is a parsed modules.dep: module name -> its file (relative to
// the modules tree) and the files it depends on.
type moduleDeps map[string]moduleEntry

type moduleEntry struct {
	Path string
	Deps []string // paths, as modules.dep lists them
}

// parseModulesDep reads modules.dep ("path: dep dep ...").
func parseModulesDep(r io.Reader) (moduleDeps, error) {
	deps := moduleDeps{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		path, rest, ok := strings.Cut(line, ":")
		if !ok {
			return nil, fmt.Errorf("modules.dep line %d: no ':'", n)
		}
		deps[moduleName(path)] = moduleEntry{Path: path, Deps: strings.Fields(rest)}
	}
	return deps, sc.Err()
}

// parseBuiltin reads modules.builtin: the names of built-in modules.
func parseBuiltin(r io.Reader) (map[string]bool, error) {
	b := map[string]bool{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" {
			b[moduleName(line)] = true
		}
	}
	return b, sc.Err()
}

// loadOrder resolves wanted modules to module files (relative to the
// modules tree) in load order: every module after its dependencies, each
// once. Built-in modules are skipped; a missing optional one is left out.
func loadOrder(deps moduleDeps, builtin map[string]bool, wanted []guestModule) ([]string, error) {
	var order []string
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(name string, chain []string) error
	visit = func(name string, chain []string) error {
		switch state[name] {
		case 2:
			return nil
		case 1:
			return fmt.Errorf("module dependency cycle: %s -> %s", strings.Join(chain, " -> "), name)
		}
		e, ok := deps[name]
		if !ok {
			return fmt.Errorf("module %s (needed by %s) is not in modules.dep", name, strings.Join(chain, " -> "))
		}
		state[name] = 1
		for _, d := range e.Deps {
			if err := visit(moduleName(d), append(chain, name)); err != nil {
				return err
			}
		}
		state[name] = 2
		order = append(order, e.Path)
		return nil
	}
	var missing []string
	for _, m := range wanted {
		name := moduleName(m.Name)
		if builtin[name] {
			continue
		}
		if _, ok := deps[name]; !ok {
			if !m.Optional {
				missing = append(missing, m.Name)
			}
			continue
		}
		if err := visit(name, nil); err != nil {
			return nil, err
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("kernel has no module %s (neither a .ko file nor built in)", strings.Join(missing, ", "))
	}
	return order, nil
}

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
		name := moduleName(rel)
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
	tmp := filepath.Join(modDir, modulesDepFile+".tmp")
	if err := os.WriteFile(tmp, []byte(lines), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(modDir, modulesDepFile))
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
					deps = append(deps, moduleName(d))
				}
			}
			return deps, nil
		}
	}
	return nil, nil
}
