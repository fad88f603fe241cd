package main

import (
	"slices"
	"testing"

	"github.com/paddock-dev/paddock/internal/sandbox"
	"github.com/paddock-dev/paddock/internal/secret"
	"github.com/paddock-dev/paddock/internal/store"
)

// TestRunBindsPresetSecret: an agent preset binds its service's secret
// when the store has it, not when -e or --secret already gives the key,
// and not for a command.
func TestRunBindsPresetSecret(t *testing.T) {
	home := t.TempDir()
	t.Setenv("PADDOCK_HOME", home)
	bind := func(o runOptions, args []string, dash int) []string {
		t.Helper()
		if err := bindPresetSecret(&o, args, dash); err != nil {
			t.Fatal(err)
		}
		return o.create.Secrets
	}
	if got := bind(runOptions{}, []string{"claude"}, -1); len(got) != 0 {
		t.Fatalf("no anthropic secret set, yet bound %q", got)
	}
	if _, err := secret.Open(store.Home(home)).Set(secret.Spec{Name: "anthropic", Source: secret.Source{Kind: secret.FromStdin}, Value: "sk-test"}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		o    runOptions
		args []string
		dash int
		want []string
	}{
		{runOptions{}, []string{"claude"}, -1, []string{"anthropic"}},
		{runOptions{}, []string{"claude", "--", "-p", "hi"}, 1, []string{"anthropic"}},
		{runOptions{env: []string{"ANTHROPIC_API_KEY"}}, []string{"claude"}, -1, nil},
		{runOptions{create: createWith("anthropic")}, []string{"claude"}, -1, []string{"anthropic"}},
		{runOptions{}, []string{"codex"}, -1, nil}, // no openai secret
		{runOptions{}, []string{"make", "test"}, 0, nil},
		{runOptions{}, []string{"shell"}, -1, nil},
	} {
		if got := bind(c.o, c.args, c.dash); !slices.Equal(got, c.want) {
			t.Errorf("%q (-e %q): bound %q, want %q", c.args, c.o.env, got, c.want)
		}
	}
}

func createWith(secrets ...string) (o sandbox.CreateOptions) {
	o.Secrets = secrets
	return o
}
