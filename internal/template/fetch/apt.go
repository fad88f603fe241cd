// Package fetch brings what a build needs into $PADDOCK_HOME/cache:
// packages downloaded with the host's apt (nothing is installed on the
// host), Debian kernels unpacked with vmlinux extracted and modules.dep
// written, and npm tarballs checked against their pinned integrity.
package fetch

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/paddock-dev/paddock/internal/store"
	"github.com/paddock-dev/paddock/internal/template"
)

// Apt looks packages up and downloads them with the host's apt, into the
// cache, and unpacks kernels there (kernel.go). Nothing is installed on the
// host. One Apt serves one build.
type Apt struct {
	Run     template.Runner
	Home    store.Home
	Steps   *template.Steps
	updated bool // apt-get update ran in this build
}

// Package is the candidate version of a package and its Depends field.
type Package struct {
	Name, Version, Depends string
}

// Show returns the candidate of pkg, running apt-get update once when the
// package lists do not know it.
func (a *Apt) Show(ctx context.Context, pkg string) (Package, error) {
	info, err := a.showOnce(ctx, pkg)
	if err != nil && !a.updated {
		if uerr := a.update(ctx); uerr != nil {
			return Package{}, uerr
		}
		info, err = a.showOnce(ctx, pkg)
	}
	if err != nil {
		return Package{}, fmt.Errorf("apt does not know package %s: check the host's apt sources: %w", pkg, err)
	}
	return info, nil
}

func (a *Apt) showOnce(ctx context.Context, pkg string) (Package, error) {
	out, err := a.Run.Run(ctx, "", "apt-cache", "show", "--no-all-versions", pkg)
	if err != nil {
		return Package{}, err
	}
	info := parseControl(out)
	info.Name = pkg
	if info.Version == "" {
		return Package{}, fmt.Errorf("apt-cache show %s: no version", pkg)
	}
	return info, nil
}

func (a *Apt) update(ctx context.Context) error {
	a.updated = true
	if _, err := a.Run.Run(ctx, "", "apt-get", "update", "-q"); err != nil {
		return fmt.Errorf("apt-get update: %w", err)
	}
	return nil
}

// parseControl reads Version and Depends from the first stanza of
// apt-cache show output.
func parseControl(out []byte) Package {
	var info Package
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			break
		}
		if v, ok := strings.CutPrefix(line, "Version: "); ok {
			info.Version = strings.TrimSpace(v)
		}
		if v, ok := strings.CutPrefix(line, "Depends: "); ok {
			info.Depends = strings.TrimSpace(v)
		}
	}
	return info
}

var kernelDepRE = regexp.MustCompile(`^(linux-image-[a-z0-9.+-]+)(?:\s*\(=\s*([^)\s]+)\))?`)

// resolveKernel turns a kernel package, possibly a meta package such as
// linux-image-amd64, into the concrete package and version that holds the
// kernel.
func (a *Apt) resolveKernel(ctx context.Context, pkg string) (Package, error) {
	info, err := a.Show(ctx, pkg)
	if err != nil {
		return Package{}, err
	}
	for _, dep := range strings.Split(info.Depends, ",") {
		m := kernelDepRE.FindStringSubmatch(strings.TrimSpace(dep))
		if m == nil {
			continue
		}
		if m[2] != "" {
			return Package{Name: m[1], Version: m[2]}, nil
		}
		return a.Show(ctx, m[1])
	}
	return info, nil
}

// Download fetches pkg=version into the cache (once) and returns the
// package fetched and the path of its .deb. When the download fails on
// package lists that may be stale (the mirror dropped that version), it runs
// apt-get update, resolves the package again with resolve, and retries.
func (a *Apt) Download(ctx context.Context, p Package, resolve func() (Package, error)) (Package, string, error) {
	deb, err := a.downloadOnce(ctx, p)
	if err != nil && !a.updated {
		if uerr := a.update(ctx); uerr != nil {
			return p, "", errors.Join(err, uerr)
		}
		if p, err = resolve(); err != nil {
			return p, "", err
		}
		deb, err = a.downloadOnce(ctx, p)
	}
	return p, deb, err
}

func (a *Apt) downloadOnce(ctx context.Context, p Package) (string, error) {
	dst := a.Home.Deb(p.Name, p.Version)
	if _, err := os.Stat(dst); err == nil {
		return dst, nil
	}
	if err := os.MkdirAll(a.Home.DebsDir(), 0o700); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(a.Home.DebsDir(), store.DownloadPattern)
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	// apt drops privileges to _apt for downloads; let it write here.
	if err := os.Chmod(tmp, 0o777); err != nil {
		return "", err
	}
	spec := p.Name + "=" + p.Version
	if _, err := a.Run.Run(ctx, tmp, "apt-get", "download", "-q", spec); err != nil {
		return "", fmt.Errorf("download %s: %w", spec, err)
	}
	got, _ := filepath.Glob(filepath.Join(tmp, p.Name+"_*.deb"))
	if len(got) != 1 {
		return "", fmt.Errorf("download %s: apt-get download left %d .deb files", spec, len(got))
	}
	// apt makes the file 0644; the cache is its owner's only.
	if err := os.Chmod(got[0], 0o600); err != nil {
		return "", err
	}
	if err := os.Rename(got[0], dst); err != nil {
		return "", err
	}
	return dst, nil
}
