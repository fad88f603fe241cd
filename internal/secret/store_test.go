package secret

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/paddock-dev/paddock/internal/store"
)

const testValue = "sk-ant-TESTVALUE-0123456789abcdef"

func newStore(t *testing.T) (*Store, store.Home) {
	t.Helper()
	home := store.Home(t.TempDir())
	return Open(home), home
}

func mustSet(t *testing.T, s *Store, spec Spec) Definition {
	t.Helper()
	d, err := s.Set(spec)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestRoundTrip(t *testing.T) {
	s, _ := newStore(t)
	ctx := context.Background()
	d := mustSet(t, s, Spec{Name: "anthropic", Source: Source{Kind: FromEnv, Env: "ANTHROPIC_API_KEY"}, Value: testValue})
	if d.Service != "anthropic" || d.Env != "ANTHROPIC_API_KEY" || len(d.Targets) != 1 || d.Targets[0].Header != "x-api-key" ||
		d.Targets[0].Hosts[0] != "api.anthropic.com" || d.Source.Kind != FromEnv || d.Source.Env != "ANTHROPIC_API_KEY" {
		t.Fatalf("definition %+v", d)
	}
	mustSet(t, s, Spec{Name: "t", Targets: []Target{{Hosts: []string{"API.Test."}, Header: "X-Api-Key"}}, Source: Source{Kind: FromStdin}, Value: "v2"})
	for name, want := range map[string]string{"anthropic": testValue, "t": "v2"} {
		v, err := s.Value(ctx, name)
		if err != nil || v != want {
			t.Errorf("Value(%s) = %q, %v; want %q", name, v, err, want)
		}
	}
	// A second Store (another process) sees the same.
	if v, err := Open(s.home).Value(ctx, "anthropic"); err != nil || v != testValue {
		t.Errorf("Value from a second store = %q, %v", v, err)
	}
	list, err := s.List()
	if err != nil || len(list) != 2 || list[0].Name != "anthropic" || list[1].Name != "t" {
		t.Fatalf("List = %+v, %v", list, err)
	}
	got, err := s.Get("t")
	if err != nil || got.Env != "T" || got.Targets[0].Hosts[0] != "api.test" || got.Service != "" || got.Source.Kind != FromStdin {
		t.Errorf("Get(t) = %+v, %v", got, err)
	}
	if _, err := s.Get("nope"); err == nil || !strings.Contains(err.Error(), "no secret named") {
		t.Errorf("Get(nope) = %v", err)
	}
	if err := s.Remove("t"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Value(ctx, "t"); err == nil {
		t.Error("a removed secret has a value")
	}
	if err := s.Remove("t"); err == nil || !strings.Contains(err.Error(), "no secret named") {
		t.Errorf("Remove twice: %v", err)
	}
}

// No file under the home holds the value, raw or in base64, and List's
// JSON does not either.
func TestEncryptedAtRest(t *testing.T) {
	s, home := newStore(t)
	mustSet(t, s, Spec{Name: "anthropic", Source: Source{Kind: FromStdin}, Value: testValue})
	mustSet(t, s, Spec{Name: "openai", Source: Source{Kind: FromStdin}, Value: testValue}) // same value, other secret
	forms := []string{testValue, base64.StdEncoding.EncodeToString([]byte(testValue)), hex.EncodeToString([]byte(testValue))}
	files := 0
	filepath.WalkDir(string(home), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		files++
		b, _ := os.ReadFile(p)
		for _, f := range forms {
			if strings.Contains(string(b), f) {
				t.Errorf("%s holds the value (%q)", p, f)
			}
		}
		return nil
	})
	if files < 3 {
		t.Errorf("only %d files under the home", files)
	}
	b, _ := os.ReadFile(home.Secrets())
	if strings.Count(string(b), `"sealed"`) != 2 {
		t.Errorf("secrets file:\n%s", b)
	}
	// The same value sealed twice differs (a nonce per value).
	f, _ := Open(home).read()
	if f.Secrets[0].Sealed == f.Secrets[1].Sealed {
		t.Error("two seals of one value are equal")
	}
}

func TestFileModesAndKey(t *testing.T) {
	s, home := newStore(t)
	if _, err := os.Stat(home.SecretsDir()); !os.IsNotExist(err) {
		t.Fatalf("Open made the folder: %v", err)
	}
	mustSet(t, s, Spec{Name: "gh", Source: Source{Kind: FromCommand, Command: "echo x"}, Targets: []Target{{Hosts: []string{"github.com"}, Header: "Authorization", Format: "Bearer %s"}}})
	if _, err := os.Stat(home.SecretsKey()); !os.IsNotExist(err) {
		t.Errorf("a command secret made a key: %v", err)
	}
	mustSet(t, s, Spec{Name: "anthropic", Source: Source{Kind: FromStdin}, Value: testValue})
	for p, want := range map[string]fs.FileMode{home.SecretsDir(): 0o700 | fs.ModeDir, home.Secrets(): 0o600, home.SecretsKey(): 0o600} {
		st, err := os.Stat(p)
		if err != nil || st.Mode() != want {
			t.Errorf("%s: %v, %v; want %v", p, st.Mode(), err, want)
		}
	}
	if home.Secrets() == home.SecretsKey() {
		t.Fatal("the key is in the secrets file")
	}
	key, err := os.ReadFile(home.SecretsKey())
	if err != nil || len(key) != 32 {
		t.Fatalf("key %d bytes, %v", len(key), err)
	}
	b, _ := os.ReadFile(home.Secrets())
	if strings.Contains(string(b), string(key)) || strings.Contains(string(b), base64.StdEncoding.EncodeToString(key)) || strings.Contains(string(b), hex.EncodeToString(key)) {
		t.Error("the secrets file holds the key")
	}
	// Later sets reuse the key.
	mustSet(t, s, Spec{Name: "openai", Source: Source{Kind: FromStdin}, Value: "o"})
	key2, _ := os.ReadFile(home.SecretsKey())
	if string(key2) != string(key) {
		t.Error("the key changed")
	}
	// No temporary files are left.
	ents, _ := os.ReadDir(home.SecretsDir())
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if strings.Join(names, " ") != "lock secrets.json secrets.key" {
		t.Errorf("files: %v", names)
	}
}

func TestWrongKey(t *testing.T) {
	s, home := newStore(t)
	mustSet(t, s, Spec{Name: "anthropic", Source: Source{Kind: FromStdin}, Value: testValue})
	other := make([]byte, 32)
	rand.Read(other)
	if err := os.WriteFile(home.SecretsKey(), other, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := s.Value(context.Background(), "anthropic")
	if err == nil || !strings.Contains(err.Error(), "does not open with the key file") || !strings.Contains(err.Error(), "set it again") {
		t.Errorf("wrong key: %v", err)
	}
	if err != nil && strings.Contains(err.Error(), testValue) {
		t.Error("the error holds the value")
	}
	os.WriteFile(home.SecretsKey(), other[:20], 0o600)
	if _, err := s.Value(context.Background(), "anthropic"); err == nil || !strings.Contains(err.Error(), "damaged") {
		t.Errorf("short key: %v", err)
	}
	os.Remove(home.SecretsKey())
	if _, err := s.Value(context.Background(), "anthropic"); err == nil || !strings.Contains(err.Error(), "key file is missing") {
		t.Errorf("no key: %v", err)
	}
	if _, err := os.Stat(home.SecretsKey()); !os.IsNotExist(err) {
		t.Error("Value made a key")
	}
	// A sealed value moved to another secret does not open.
	mustSet(t, s, Spec{Name: "anthropic", Source: Source{Kind: FromStdin}, Value: testValue})
	mustSet(t, s, Spec{Name: "openai", Source: Source{Kind: FromStdin}, Value: "other"})
	f, _ := s.read()
	f.Secrets[1].Sealed = f.Secrets[0].Sealed
	store.WriteJSON(home.Secrets(), f)
	if _, err := s.Value(context.Background(), "openai"); err == nil {
		t.Error("a value sealed for anthropic opened as openai's")
	}
}

var placeholderRE = regexp.MustCompile(`^paddock-secret-([a-z0-9-]+)-[0-9a-f]{24}$`)

func TestPlaceholderStable(t *testing.T) {
	s, _ := newStore(t)
	d1 := mustSet(t, s, Spec{Name: "my-key", Targets: []Target{{Hosts: []string{"a.test"}, Header: "X-K"}}, Source: Source{Kind: FromStdin}, Value: "one"})
	if m := placeholderRE.FindStringSubmatch(d1.Placeholder); m == nil || m[1] != "my-key" {
		t.Fatalf("placeholder %q", d1.Placeholder)
	}
	if d1.Env != "MY_KEY" {
		t.Errorf("env %q", d1.Env)
	}
	d2 := mustSet(t, s, Spec{Name: "my-key", Targets: []Target{{Hosts: []string{"b.test"}, Header: "X-K"}}, Source: Source{Kind: FromCommand, Command: "echo two"}})
	if d2.Placeholder != d1.Placeholder || !d2.Created.Equal(d1.Created) {
		t.Errorf("set again: placeholder %q -> %q, created %v -> %v", d1.Placeholder, d2.Placeholder, d1.Created, d2.Created)
	}
	if p, err := s.Placeholder("my-key"); err != nil || p != d1.Placeholder {
		t.Errorf("Placeholder = %q, %v", p, err)
	}
	if v, err := s.Value(context.Background(), "my-key"); err != nil || v != "two" {
		t.Errorf("Value after switching to a command = %q, %v", v, err)
	}
	f, _ := s.read()
	if f.Secrets[0].Sealed != "" {
		t.Error("a command secret kept its sealed value")
	}
	other := mustSet(t, s, Spec{Name: "anthropic", Source: Source{Kind: FromStdin}, Value: "x"})
	if other.Placeholder == d1.Placeholder {
		t.Error("two secrets share a placeholder")
	}
	s.Remove("my-key")
	d3 := mustSet(t, s, Spec{Name: "my-key", Targets: []Target{{Hosts: []string{"a.test"}, Header: "X-K"}}, Source: Source{Kind: FromStdin}, Value: "one"})
	if d3.Placeholder == d1.Placeholder {
		t.Error("a secret made again after rm has its old placeholder")
	}
}

func TestPlaceholders(t *testing.T) {
	p1 := "paddock-secret-gh-" + strings.Repeat("ab", 12)
	p2 := "paddock-secret-my-key-2-" + strings.Repeat("0f", 12)
	for _, c := range []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"Bearer " + p1, []string{p1}},
		{"a=" + p1 + "&b=" + p2 + "-tail", []string{p1, p2}},
		{p1 + p2, []string{p1, p2}},
		{"paddock-secret-gh-abc", nil},
		{"paddock-secret--" + strings.Repeat("ab", 12), nil},
		{"paddock-secret-GH-" + strings.Repeat("ab", 12), nil},
	} {
		if got := Placeholders(c.in); fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Errorf("Placeholders(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// Sets from many goroutines, each with its own Store (as separate
// processes would be), lose nothing.
func TestConcurrentSet(t *testing.T) {
	_, home := newStore(t)
	const n = 24
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := Open(home).Set(Spec{
				Name:    fmt.Sprintf("s%d", i),
				Targets: []Target{{Hosts: []string{fmt.Sprintf("h%d.test", i)}, Header: "X-K"}},
				Source:  Source{Kind: FromStdin},
				Value:   fmt.Sprintf("value-%d", i),
			})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	s := Open(home)
	list, err := s.List()
	if err != nil || len(list) != n {
		t.Fatalf("List: %d secrets, %v; want %d", len(list), err, n)
	}
	for i := range n {
		if v, err := s.Value(context.Background(), fmt.Sprintf("s%d", i)); err != nil || v != fmt.Sprintf("value-%d", i) {
			t.Errorf("s%d = %q, %v", i, v, err)
		}
	}
}

func TestBuiltinServices(t *testing.T) {
	s, _ := newStore(t)
	want := map[string]string{"anthropic": "ANTHROPIC_API_KEY", "openai": "OPENAI_API_KEY", "google": "GEMINI_API_KEY", "github": "GH_TOKEN"}
	for name, env := range want {
		d := mustSet(t, s, Spec{Name: name, Source: Source{Kind: FromStdin}, Value: "tok"})
		if d.Env != env || d.Service != name {
			t.Errorf("%s: env %q service %q", name, d.Env, d.Service)
		}
	}
	gh, _ := s.Get("github")
	api, ok := gh.TargetFor("api.github.com")
	if !ok || api.Header != "Authorization" || api.HeaderValue("tok") != "Bearer tok" {
		t.Errorf("api.github.com: %+v", api)
	}
	git, ok := gh.TargetFor("github.com")
	if !ok || git.HeaderValue("tok") != "Basic "+base64.StdEncoding.EncodeToString([]byte("x-access-token:tok")) {
		t.Errorf("github.com: %+v %q", git, git.HeaderValue("tok"))
	}
	if _, ok := gh.TargetFor("gist.github.com"); ok {
		t.Error("github's secret is for gist.github.com")
	}
	if h := gh.Hosts(); fmt.Sprint(h) != "[api.github.com github.com]" {
		t.Errorf("hosts %v", h)
	}
	an, _ := s.Get("anthropic")
	if tg, _ := an.TargetFor("api.anthropic.com"); tg.HeaderValue("k") != "k" || tg.String() != "x-api-key" {
		t.Errorf("anthropic: %q %q", tg.HeaderValue("k"), tg.String())
	}
	// A built-in name with hosts of its own is custom.
	d := mustSet(t, s, Spec{Name: "openai", Targets: []Target{{Hosts: []string{"proxy.corp.test"}, Header: "api-key"}}, Source: Source{Kind: FromStdin}, Value: "x"})
	if d.Service != "" || d.Env != "OPENAI" || d.Hosts()[0] != "proxy.corp.test" {
		t.Errorf("custom openai: %+v", d)
	}
	// Services hands out copies.
	Services()[0].Targets[0].Hosts[0] = "evil.test"
	if svc, _ := LookupService("anthropic"); svc.Targets[0].Hosts[0] != "api.anthropic.com" {
		t.Error("Services shares its slices")
	}
}

func TestLookup(t *testing.T) {
	s, _ := newStore(t)
	for _, n := range []string{"a", "b"} {
		mustSet(t, s, Spec{Name: n, Targets: []Target{{Hosts: []string{n + ".test"}, Header: "X"}}, Source: Source{Kind: FromStdin}, Value: "v"})
	}
	found, missing, err := s.Lookup([]string{"b", "nope", "a"})
	if err != nil || len(found) != 2 || found[0].Name != "b" || found[1].Name != "a" || len(missing) != 1 || missing[0] != "nope" {
		t.Fatalf("Lookup: %+v, missing %q, %v", found, missing, err)
	}
	if found, missing, err := s.Lookup(nil); found != nil || missing != nil || err != nil {
		t.Fatalf("Lookup(nil): %v %v %v", found, missing, err)
	}
}

func TestRebind(t *testing.T) {
	got, err := Rebind([]string{"a", "b"}, []string{"c", "a", "c"}, []string{"b"})
	if err != nil || !slices.Equal(got, []string{"a", "c"}) {
		t.Errorf("Rebind = %v, %v; want [a c]", got, err)
	}
	// Unbind first: a name unbound and bound in one call ends last.
	if got, err := Rebind([]string{"a", "b"}, []string{"a"}, []string{"a"}); err != nil || !slices.Equal(got, []string{"b", "a"}) {
		t.Errorf("Rebind = %v, %v; want [b a]", got, err)
	}
	bound := []string{"a"}
	if _, err := Rebind(bound, []string{"c"}, []string{"x"}); err == nil || !strings.Contains(err.Error(), `secret "x" is not bound`) {
		t.Errorf("unbind of a name not bound: %v", err)
	}
	if !slices.Equal(bound, []string{"a"}) {
		t.Errorf("the bound list was changed in place: %v", bound)
	}
}
