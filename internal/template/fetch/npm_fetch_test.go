package fetch

import (
	"context"
	"crypto/sha512"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/paddock-dev/paddock/internal/template/recipe"
)

func TestNpmTarballURL(t *testing.T) {
	for p, want := range map[recipe.NpmPackage]string{
		{Package: "npm", Version: "10.9.9"}:                "https://registry.npmjs.org/npm/-/npm-10.9.9.tgz",
		{Package: "@openai/codex", Version: "0.171.0"}:     "https://registry.npmjs.org/@openai/codex/-/codex-0.171.0.tgz",
		{Package: "@google/gemini-cli", Version: "0.61.0"}: "https://registry.npmjs.org/@google/gemini-cli/-/gemini-cli-0.61.0.tgz",
	} {
		if got := npmTarballURL(NpmRegistry+"/", p); got != want {
			t.Errorf("%s: %s, want %s", p, got, want)
		}
	}
}

// TestFetchNpmTarball: a tarball is kept only when its SHA-512 is the
// recipe's integrity; one that differs is refused and removed.
func TestFetchNpmTarball(t *testing.T) {
	good := []byte("the real tarball")
	sum := sha512.Sum512(good)
	integrity := "sha512-" + base64.StdEncoding.EncodeToString(sum[:])
	served := good
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/@s/tool/-/tool-1.0.0.tgz" {
			http.NotFound(w, r)
			return
		}
		w.Write(served)
	}))
	defer srv.Close()
	ctx := context.Background()
	dir := t.TempDir()
	p := recipe.NpmPackage{Package: "@s/tool", Version: "1.0.0", Integrity: integrity}

	dst := filepath.Join(dir, "ok.tgz")
	if err := FetchNpmTarball(ctx, srv.Client(), srv.URL, p, dst); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(dst); string(data) != string(good) {
		t.Errorf("kept %q", data)
	}

	served = []byte("a tarball someone swapped")
	dst = filepath.Join(dir, "swapped.tgz")
	err := FetchNpmTarball(ctx, srv.Client(), srv.URL, p, dst)
	if err == nil || !strings.Contains(err.Error(), "integrity mismatch") || !strings.Contains(err.Error(), "@s/tool@1.0.0") {
		t.Errorf("swapped tarball: %v", err)
	}
	if _, err := os.Lstat(dst); !os.IsNotExist(err) {
		t.Errorf("a refused tarball was left at %s", dst)
	}

	missing := p
	missing.Version = "2.0.0"
	if err := FetchNpmTarball(ctx, srv.Client(), srv.URL, missing, filepath.Join(dir, "m.tgz")); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("missing version: %v", err)
	}
}
