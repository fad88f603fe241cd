package secret

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func custom(hosts []string, header, format, user string) []Target {
	return []Target{{Hosts: hosts, Header: header, Format: format, BasicUser: user}}
}

var stdin = Source{Kind: FromStdin}

func TestValidation(t *testing.T) {
	host := []string{"api.test"}
	for _, c := range []struct {
		name string
		spec Spec
		want []string // every one in the error
	}{
		{"bad name", Spec{Name: "Bad_Name", Targets: custom(host, "X", "", ""), Source: stdin, Value: "v"}, []string{"invalid secret name"}},
		{"custom without hosts", Spec{Name: "mine", Source: stdin, Value: "v"}, []string{"not a built-in service", "anthropic, openai, google, github"}},
		{"newline", Spec{Name: "anthropic", Source: stdin, Value: "a\nb"}, []string{"line break"}},
		{"carriage return", Spec{Name: "anthropic", Source: stdin, Value: "a\rb"}, []string{"line break"}},
		{"NUL", Spec{Name: "anthropic", Source: stdin, Value: "a\x00b"}, []string{"NUL"}},
		{"control", Spec{Name: "anthropic", Source: stdin, Value: "a\x1bb"}, []string{"control character"}},
		{"empty", Spec{Name: "anthropic", Source: stdin, Value: ""}, []string{"empty"}},
		{"too long", Spec{Name: "anthropic", Source: stdin, Value: strings.Repeat("x", MaxValue+1)}, []string{"longer than"}},
		{"header not a token", Spec{Name: "t", Targets: custom(host, "X Api Key", "", ""), Source: stdin, Value: "v"}, []string{"invalid header name"}},
		{"header with colon", Spec{Name: "t", Targets: custom(host, "X-Key:", "", ""), Source: stdin, Value: "v"}, []string{"invalid header name"}},
		{"no header", Spec{Name: "t", Targets: custom(host, "", "", ""), Source: stdin, Value: "v"}, []string{"no header"}},
		{"framing header", Spec{Name: "t", Targets: custom(host, "Host", "", ""), Source: stdin, Value: "v"}, []string{"frames or routes"}},
		{"bad host", Spec{Name: "t", Targets: custom([]string{"api test"}, "X", "", ""), Source: stdin, Value: "v"}, []string{"invalid host"}},
		{"empty label", Spec{Name: "t", Targets: custom([]string{"a..test"}, "X", "", ""), Source: stdin, Value: "v"}, []string{"invalid host"}},
		{"bare wildcard", Spec{Name: "t", Targets: custom([]string{"*"}, "X", "", ""), Source: stdin, Value: "v"}, []string{"invalid host"}},
		{"wildcard inside", Spec{Name: "t", Targets: custom([]string{"a.*.test"}, "X", "", ""), Source: stdin, Value: "v"}, []string{"invalid host"}},
		{"two wildcards", Spec{Name: "t", Targets: custom([]string{"*.*.test"}, "X", "", ""), Source: stdin, Value: "v"}, []string{"invalid host"}},
		{"ip", Spec{Name: "t", Targets: custom([]string{"10.0.0.1"}, "X", "", ""), Source: stdin, Value: "v"}, []string{"is an address"}},
		{"port 0", Spec{Name: "t", Targets: custom([]string{"api.test:0"}, "X", "", ""), Source: stdin, Value: "v"}, []string{"a port from 1 to 65535"}},
		{"port too big", Spec{Name: "t", Targets: custom([]string{"api.test:65536"}, "X", "", ""), Source: stdin, Value: "v"}, []string{"a port from 1 to 65535"}},
		{"port not a number", Spec{Name: "t", Targets: custom([]string{"api.test:https"}, "X", "", ""), Source: stdin, Value: "v"}, []string{"a port from 1 to 65535"}},
		{"port 80", Spec{Name: "t", Targets: custom([]string{"api.test:80"}, "X", "", ""), Source: stdin, Value: "v"}, []string{"plain HTTP"}},
		{"port 443 is the name alone", Spec{Name: "t", Targets: []Target{{Hosts: host, Header: "X"}, {Hosts: []string{"api.test:443"}, Header: "Y"}}, Source: stdin, Value: "v"}, []string{"given twice"}},
		{"no hosts", Spec{Name: "t", Targets: custom(nil, "X", "", ""), Source: stdin, Value: "v"}, []string{"without hosts"}},
		{"host twice", Spec{Name: "t", Targets: []Target{{Hosts: host, Header: "X"}, {Hosts: []string{"API.test"}, Header: "Y"}}, Source: stdin, Value: "v"}, []string{"given twice"}},
		{"format without %s", Spec{Name: "t", Targets: custom(host, "Authorization", "Bearer", ""), Source: stdin, Value: "v"}, []string{"exactly once"}},
		{"format with two %s", Spec{Name: "t", Targets: custom(host, "Authorization", "%s %s", ""), Source: stdin, Value: "v"}, []string{"exactly once"}},
		{"format with newline", Spec{Name: "t", Targets: custom(host, "Authorization", "Bearer %s\n", ""), Source: stdin, Value: "v"}, []string{"control character"}},
		{"basic with format", Spec{Name: "t", Targets: custom(host, "", "Bearer %s", "u"), Source: stdin, Value: "v"}, []string{"basic auth takes no format"}},
		{"basic user with colon", Spec{Name: "t", Targets: custom(host, "", "", "a:b"), Source: stdin, Value: "v"}, []string{"invalid basic auth user"}},
		{"bad env", Spec{Name: "t", Env: "1X", Targets: custom(host, "X", "", ""), Source: stdin, Value: "v"}, []string{"invalid variable name"}},
		{"env with dash", Spec{Name: "t", Env: "A-B", Targets: custom(host, "X", "", ""), Source: stdin, Value: "v"}, []string{"invalid variable name"}},
		{"default env starts with a digit", Spec{Name: "1password", Targets: custom(host, "X", "", ""), Source: stdin, Value: "v"}, []string{"not a valid variable name"}},
		{"unknown source", Spec{Name: "anthropic", Source: Source{Kind: "file"}, Value: "v"}, []string{"unknown value source"}},
		{"from bad env", Spec{Name: "anthropic", Source: Source{Kind: FromEnv, Env: "A B"}, Value: "v"}, []string{"invalid host variable"}},
		{"empty command", Spec{Name: "anthropic", Source: Source{Kind: FromCommand, Command: "  "}}, []string{"command is empty"}},
		{"command with a value", Spec{Name: "anthropic", Source: Source{Kind: FromCommand, Command: "true"}, Value: "v"}, []string{"takes no value"}},
		{"cache without a command", Spec{Name: "anthropic", Source: Source{Kind: FromStdin, Cache: Duration(time.Minute)}, Value: "v"}, []string{"only with a command"}},
		{"every problem at once", Spec{Name: "BAD", Targets: custom([]string{"a b"}, "x y", "nope", ""), Source: stdin, Value: "a\nb"},
			[]string{"invalid secret name", "invalid host", "invalid header name", "exactly once", "line break"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, home := newStore(t)
			// An existing secret that the refused Set must not touch.
			mustSet(t, s, Spec{Name: "keep", Targets: custom([]string{"keep.test"}, "X", "", ""), Source: stdin, Value: "kept"})
			before := snapshot(t, string(home))
			_, err := s.Set(c.spec)
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if c.spec.Value != "" && len(c.spec.Value) > 1 && strings.Contains(err.Error(), c.spec.Value) {
				t.Errorf("error %q holds the value", err)
			}
			if after := snapshot(t, string(home)); after != before {
				t.Errorf("files changed:\n%s\n---\n%s", before, after)
			}
		})
	}
}

// A refused Set on an empty home makes nothing at all.
func TestValidationMakesNothing(t *testing.T) {
	s, home := newStore(t)
	if _, err := s.Set(Spec{Name: "anthropic", Source: stdin, Value: "a\nb"}); err == nil {
		t.Fatal("accepted")
	}
	if err := s.Remove("anthropic"); err == nil {
		t.Fatal("removed a missing secret")
	}
	if ents, _ := os.ReadDir(string(home)); len(ents) != 0 {
		t.Errorf("the home has %d entries", len(ents))
	}
}

func TestDefaults(t *testing.T) {
	s, _ := newStore(t)
	d := mustSet(t, s, Spec{Name: "t", Targets: custom([]string{"Api.Test."}, "", "", "x-access-token"), Source: stdin, Value: "v"})
	if tg := d.Targets[0]; tg.Header != "Authorization" || tg.Hosts[0] != "api.test" || tg.String() != "Authorization: basic auth, user x-access-token" {
		t.Errorf("basic target %+v %q", tg, tg.String())
	}
	d = mustSet(t, s, Spec{Name: "p", Targets: custom([]string{"Api.Test.:8443", "b.test:443"}, "X", "", ""), Source: stdin, Value: "v"})
	if h := d.Targets[0].Hosts; h[0] != "api.test:8443" || h[1] != "b.test" {
		t.Errorf("hosts with ports: %q", h)
	}
	if _, ok := d.TargetFor(HostKey("api.test", 8443)); !ok {
		t.Error("no target for api.test on 8443")
	}
	if _, ok := d.TargetFor(HostKey("api.test", 443)); ok {
		t.Error("a target for api.test on 443")
	}
	// A wildcard matches the names under it, at any depth, not itself; a
	// name beats a wildcard, a longer wildcard a shorter one.
	d = mustSet(t, s, Spec{Name: "w", Targets: []Target{
		{Hosts: []string{"*.Example.test"}, Header: "A"}, {Hosts: []string{"*.api.example.test"}, Header: "B"},
		{Hosts: []string{"one.api.example.test"}, Header: "C"}, {Hosts: []string{"*.example.test:8443"}, Header: "D"},
	}, Source: stdin, Value: "v"})
	for host, want := range map[string]string{
		"x.example.test": "A", "a.b.example.test": "A", "x.api.example.test": "B", "one.api.example.test": "C",
		"api.example.test": "A", "x.example.test:8443": "D", "example.test": "", "xexample.test": "", "x.example.test:444": "",
	} {
		tg, ok := d.TargetFor(host)
		if got := map[bool]string{true: tg.Header}[ok]; got != want {
			t.Errorf("TargetFor(%q) = %q, want %q", host, got, want)
		}
	}
	d = mustSet(t, s, Spec{Name: "u", Env: "MY_VAR", Query: true, Targets: custom([]string{"a.test"}, "Authorization", "%s", ""), Source: stdin, Value: "v"})
	if d.Env != "MY_VAR" || !d.Query || d.PassElsewhere || d.Targets[0].Format != "" {
		t.Errorf("%+v", d)
	}
	d = mustSet(t, s, Spec{Name: "u", PassElsewhere: true, Targets: custom([]string{"a.test"}, "Authorization", "%s", ""), Source: stdin, Value: "v"})
	if got, err := s.Get("u"); err != nil || !d.PassElsewhere || !got.PassElsewhere || got.Query {
		t.Errorf("pass_elsewhere: set %+v, stored %+v, %v", d, got, err)
	}
	d = mustSet(t, s, Spec{Name: "c", Targets: custom([]string{"a_b.test"}, "Authorization", "token %s 100%", ""), Source: Source{Kind: FromCommand, Command: "echo v"}})
	if d.Source.Cache != Duration(DefaultCache) || d.Targets[0].HeaderValue("v") != "token v 100%" {
		t.Errorf("%+v", d)
	}
	d = mustSet(t, s, Spec{Name: "c", Targets: custom([]string{"a.test"}, "X", "", ""), Source: Source{Kind: FromCommand, Command: "echo v", Cache: -1}})
	if d.Source.Cache != 0 || d.Source.String() != "command: echo v (no cache)" {
		t.Errorf("%+v %q", d.Source, d.Source.String())
	}
}

// snapshot lists every file under dir with its mode and content.
func snapshot(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, _ := d.Info()
		b.WriteString(p + " " + info.Mode().String() + "\n")
		if !d.IsDir() {
			c, _ := os.ReadFile(p)
			b.Write(c)
		}
		return nil
	})
	return b.String()
}
