// Package initramfs packs, per template and agent build, the newc cpio
// archive QEMU boots with: the agent as /init, the kernel modules the guest
// needs resolved through modules.dep, and their load order. Archives are
// cached and pruned when unused.
package initramfs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/cavaliergopher/cpio"
	"github.com/paddock-dev/paddock/internal/store"
	"github.com/paddock-dev/paddock/internal/template"
	"github.com/paddock-dev/paddock/internal/template/recipe"
)

// For returns the path of a newc cpio archive for t holding the agent
// as /init (mode 0755), the kernel modules the guest needs under
// /lib/modules/KVER/, and /etc/paddock/modules: their paths relative to
// /lib/modules/KVER/, one a line, dependencies first, each once. The
// archive is cached under cacheDir by a hash of the agent binary, the
// kernel version and the module list; a cached one is returned at once.
func For(ctx context.Context, t *template.Template, agentPath, cacheDir string) (string, error) {
	fail := func(err error) (string, error) {
		return "", fmt.Errorf("initramfs for template %q: %w", t.Name, err)
	}
	// Hashing the agent and resolving modules costs tens of milliseconds on
	// every sandbox start; a memo keyed by the agent file's identity (path,
	// size, mtime) and the template's build skips both.
	memo := ""
	if st, err := os.Stat(agentPath); err == nil {
		key := sha256.Sum256([]byte(fmt.Sprintf("%d\n%s\n%d\n%d\n%s\n%s\n%d", recipe.BuilderVersion, agentPath, st.Size(), st.ModTime().UnixNano(), t.Dir, t.RecipeHash, t.Created.UnixNano())))
		memo = store.InitramfsMemo(cacheDir, hex.EncodeToString(key[:16]))
		if b, err := os.ReadFile(memo); err == nil {
			if markUsed(string(b)) == nil {
				return string(b), nil
			}
		}
	}
	modules, err := guestModuleOrder(t)
	if err != nil {
		return fail(err)
	}
	agent, err := os.ReadFile(agentPath)
	if err != nil {
		return fail(fmt.Errorf("agent binary: %w", err))
	}
	h := sha256.New()
	fmt.Fprintf(h, "builder %d\nkernel %s\n", recipe.BuilderVersion, t.KernelVersion)
	for _, m := range modules {
		fmt.Fprintf(h, "module %s\n", m)
	}
	sum := sha256.Sum256(agent)
	fmt.Fprintf(h, "agent %x\n", sum)
	out := store.InitramfsPath(cacheDir, hex.EncodeToString(h.Sum(nil))[:32])
	defer func() {
		if memo != "" {
			if _, err := os.Stat(out); err == nil {
				os.WriteFile(memo, []byte(out), 0o600)
			}
		}
	}()
	if markUsed(out) == nil {
		return out, nil
	}
	if err := ctx.Err(); err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o700); err != nil {
		return fail(err)
	}
	f, err := os.CreateTemp(filepath.Dir(out), store.InitramfsTempPattern)
	if err != nil {
		return fail(err)
	}
	defer os.Remove(f.Name()) // a no-op once renamed
	err = writeInitramfs(f, agent, t.ModulesDir, t.KernelVersion, modules)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), out)
	}
	if err != nil {
		return fail(err)
	}
	pruneInitramfs(filepath.Dir(out), time.Now().Add(-initramfsKeep))
	return out, nil
}

// initramfsKeep is how long an archive no start has used stays cached.
// There is one per agent build, so without pruning every upgrade (and every
// development build) would leave one behind.
const initramfsKeep = 14 * 24 * time.Hour

// markUsed records a start's use of a cached archive in its mtime, which
// pruneInitramfs goes by; it fails only if the archive is gone (a cache
// this user may read but not change is still used as it is).
func markUsed(archive string) error {
	now := time.Now()
	if err := os.Chtimes(archive, now, now); err != nil {
		_, err := os.Stat(archive)
		return err
	}
	return nil
}

// pruneInitramfs removes the archives in dir last used before cutoff (and
// unfinished ones older than that), and the memos that point at archives
// no longer there. An archive in use by a start was just marked, and a
// running VM read its copy when QEMU started, so neither is affected; a
// start that needs a removed archive again rebuilds the same bytes. Errors
// are ignored: a later prune tries again.
func pruneInitramfs(dir string, cutoff time.Time) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		// Archives, and the temporary files of builds that were killed.
		if matches(store.InitramfsArchiveGlob, e.Name()) || matches(store.InitramfsTempPattern, e.Name()) {
			if fi, err := e.Info(); err == nil && fi.ModTime().Before(cutoff) {
				os.Remove(filepath.Join(dir, e.Name()))
			}
		}
	}
	for _, e := range ents {
		if !matches(store.InitramfsMemoGlob, e.Name()) {
			continue
		}
		p := filepath.Join(dir, e.Name())
		if b, err := os.ReadFile(p); err == nil {
			if _, err := os.Stat(string(b)); os.IsNotExist(err) {
				os.Remove(p)
			}
		}
	}
}

// guestModuleOrder resolves guestModules against t's modules tree.
func guestModuleOrder(t *template.Template) ([]string, error) {
	df, err := os.Open(filepath.Join(t.ModulesDir, store.ModulesDepFile))
	if err != nil {
		return nil, err
	}
	defer df.Close()
	deps, err := parseModulesDep(df)
	if err != nil {
		return nil, err
	}
	builtin := map[string]bool{}
	if bf, err := os.Open(filepath.Join(t.ModulesDir, store.ModulesBuiltinFile)); err == nil {
		builtin, err = parseBuiltin(bf)
		bf.Close()
		if err != nil {
			return nil, err
		}
	}
	return loadOrder(deps, builtin, guestModules)
}

// writeInitramfs writes the archive: directories before their contents,
// owned by root, with zero times so equal inputs give equal bytes.
func writeInitramfs(w io.Writer, agent []byte, modDir, kver string, modules []string) error {
	cw := cpio.NewWriter(w)
	dirs := map[string]bool{}
	var mkdir func(string) error
	mkdir = func(d string) error {
		if d == "." || dirs[d] {
			return nil
		}
		if err := mkdir(path.Dir(d)); err != nil {
			return err
		}
		dirs[d] = true
		return cw.WriteHeader(&cpio.Header{Name: d, Mode: cpio.TypeDir | 0o755, Links: 2})
	}
	file := func(name string, mode cpio.FileMode, data []byte) error {
		if err := mkdir(path.Dir(name)); err != nil {
			return err
		}
		if err := cw.WriteHeader(&cpio.Header{Name: name, Mode: cpio.TypeReg | mode, Size: int64(len(data))}); err != nil {
			return err
		}
		_, err := cw.Write(data)
		return err
	}
	for _, d := range []string{"dev", "proc", "sys", "run", "tmp"} {
		if err := mkdir(d); err != nil {
			return err
		}
	}
	if err := file(store.InitramfsInit, 0o755, agent); err != nil {
		return err
	}
	modRoot := path.Join(store.InitramfsModulesDir, kver)
	for _, m := range modules {
		data, err := os.ReadFile(filepath.Join(modDir, filepath.FromSlash(m)))
		if err != nil {
			return err
		}
		if err := file(path.Join(modRoot, m), 0o644, data); err != nil {
			return err
		}
	}
	list := strings.Join(modules, "\n")
	if list != "" {
		list += "\n"
	}
	if err := file(store.InitramfsModuleList, 0o644, []byte(list)); err != nil {
		return err
	}
	return cw.Close()
}

// matches reports whether name matches the glob pattern.
func matches(pattern, name string) bool {
	ok, _ := filepath.Match(pattern, name)
	return ok
}
