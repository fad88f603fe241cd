package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/paddock-dev/paddock/internal/secret"
	"github.com/paddock-dev/paddock/internal/store"
)

// runSecret runs `paddock secret ARGS...` in process with stdin in.
func runSecret(t *testing.T, in string, args ...string) (string, error) {
	t.Helper()
	cmd := secretCmd()
	var out bytes.Buffer
	cmd.SetArgs(args)
	cmd.SetIn(strings.NewReader(in))
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	err := cmd.Execute()
	return out.String(), err
}

func TestSecretVerbs(t *testing.T) {
	home := t.TempDir()
	t.Setenv("PADDOCK_HOME", home)
	t.Setenv("PADDOCK_TEST_KEY", "sk-from-env")
	for _, args := range [][]string{
		{"set", "anthropic", "--from-env", "PADDOCK_TEST_KEY"},
		{"set", "t", "--host", "api.test", "--header", "X-Api-Key", "--stdin"},
		{"set", "gh", "--host", "github.com", "--host", "api.github.com", "--header", "Authorization", "--format", "Bearer %s", "--command", "echo tok", "--cache", "1m"},
		{"set", "git", "--host", "git.test", "--basic-user", "x-access-token", "--command", "echo tok", "--cache", "0", "--env", "GIT_TOKEN", "--query"},
	} {
		out, err := runSecret(t, "sk-from-stdin\n", args...)
		if err != nil || out != args[1]+"\n" {
			t.Fatalf("%v: %q, %v", args, out, err)
		}
	}
	out, err := runSecret(t, "", "ls")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"anthropic  api.anthropic.com", "x-api-key", "ANTHROPIC_API_KEY", "env PADDOCK_TEST_KEY (at set time)",
		"Authorization: Bearer %s", "command: echo tok (cached 1m0s)", "github.com,api.github.com",
		"Authorization: basic auth, user x-access-token", "GIT_TOKEN", "command: echo tok (no cache)",
		"t          api.test", "X-Api-Key", "stdin (at set time)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("ls lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "sk-from") {
		t.Errorf("ls shows a value:\n%s", out)
	}
	out, err = runSecret(t, "", "ls", "--json")
	var list []secret.Definition
	if err != nil || json.Unmarshal([]byte(out), &list) != nil || len(list) != 4 {
		t.Fatalf("ls --json: %v\n%s", err, out)
	}
	if strings.Contains(out, "sk-from") || strings.Contains(out, "sealed") {
		t.Errorf("ls --json shows a value:\n%s", out)
	}
	if !list[2].Query || list[2].Targets[0].Header != "Authorization" || !strings.HasPrefix(list[0].Placeholder, "paddock-secret-anthropic-") {
		t.Errorf("ls --json: %+v", list)
	}
	s := secret.Open(store.Home(home))
	for name, want := range map[string]string{"anthropic": "sk-from-env", "t": "sk-from-stdin", "gh": "tok"} {
		if v, err := s.Value(t.Context(), name); err != nil || v != want {
			t.Errorf("%s = %q, %v", name, v, err)
		}
	}
	if _, err := runSecret(t, "", "rm", "gh", "t"); err != nil {
		t.Fatal(err)
	}
	if l, _ := s.List(); len(l) != 2 {
		t.Errorf("after rm: %+v", l)
	}
	// The files hold no value.
	for _, f := range []string{"secrets.json", "secrets.key"} {
		b, _ := os.ReadFile(filepath.Join(home, "secrets", f))
		if bytes.Contains(b, []byte("sk-from")) {
			t.Errorf("%s holds a value", f)
		}
	}
}

func TestSecretSetErrors(t *testing.T) {
	home := t.TempDir()
	t.Setenv("PADDOCK_HOME", home)
	for _, c := range []struct {
		args []string
		in   string
		want string
	}{
		{[]string{"set", "anthropic"}, "", "exactly one of"},
		{[]string{"set", "anthropic", "--stdin", "--command", "x"}, "", "exactly one of"},
		{[]string{"set", "anthropic", "--stdin", "--cache", "1m"}, "v", "--cache goes with --command"},
		{[]string{"set", "anthropic", "--stdin", "--header", "X"}, "v", "anthropic is a built-in service"},
		{[]string{"set", "mine", "--stdin", "--header", "X"}, "v", "need the hosts"},
		{[]string{"set", "mine", "--stdin"}, "v", "not a built-in service"},
		{[]string{"set", "anthropic", "--from-env", "PADDOCK_TEST_UNSET_VAR"}, "", "the variable is not set"},
		{[]string{"set", "anthropic", "--stdin"}, "a\nb\n", "line break"},
		{[]string{"set", "anthropic", "--stdin"}, "\n", "empty"},
		{[]string{"set", "t", "--stdin", "--host", "api.test", "--header", "Bad Header"}, "v", "invalid header name"},
		{[]string{"set", "t", "--stdin", "--host", "api.test", "--header", "X", "--format", "Bearer"}, "v", "exactly once"},
		{[]string{"rm", "nope"}, "", "exit status 1"},
	} {
		out, err := runSecret(t, c.in, c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v (want %q); out %q", c.args, err, c.want, out)
		}
	}
	if _, err := os.Stat(filepath.Join(home, "secrets", "secrets.json")); !os.IsNotExist(err) {
		t.Errorf("refused sets wrote the store: %v", err)
	}
}
