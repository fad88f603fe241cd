package e2e

import (
	"strings"
	"testing"
)

func TestDebianToolsAsAgent(t *testing.T) {
	e := newEnv(t, "debian")
	e.ok("create", "--name", "deb", "--workspace", e.ws)
	checks := []struct {
		argv []string
		want string
	}{
		{[]string{"git", "--version"}, "git version"},
		{[]string{"python3", "-c", "print(6*7)"}, "42"},
		{[]string{"node", "-e", "console.log(6*7)"}, "42"},
		{[]string{"sudo", "-n", "true"}, ""},
		{[]string{"id", "-un"}, "agent"},
		{[]string{"bash", "-c", "curl --version | head -1"}, "curl"},
	}
	for _, c := range checks {
		out := e.ok(append([]string{"exec", "deb", "--"}, c.argv...)...)
		if !strings.Contains(out, c.want) {
			t.Errorf("%v printed %q, want %q", c.argv, out, c.want)
		}
	}
}
