package initramfs

import (
	"bufio"
	"fmt"
	"io"
	"strings"

	"github.com/paddock-dev/paddock/internal/template"
)

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
		deps[template.ModuleName(path)] = moduleEntry{Path: path, Deps: strings.Fields(rest)}
	}
	return deps, sc.Err()
}

// parseBuiltin reads modules.builtin: the names of built-in modules.
func parseBuiltin(r io.Reader) (map[string]bool, error) {
	b := map[string]bool{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" {
			b[template.ModuleName(line)] = true
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
			if err := visit(template.ModuleName(d), append(chain, name)); err != nil {
				return err
			}
		}
		state[name] = 2
		order = append(order, e.Path)
		return nil
	}
	var missing []string
	for _, m := range wanted {
		name := template.ModuleName(m.Name)
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
