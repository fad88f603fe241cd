package e2bapi

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/paddock-dev/paddock/internal/apikey"
	"github.com/paddock-dev/paddock/internal/sandbox"
	"github.com/paddock-dev/paddock/internal/secret"
	"github.com/paddock-dev/paddock/internal/store"
)

// TestSecretsAPI: a key sets, lists and removes its own secrets, never
// sees a value, cannot touch another key's or the CLI's, and cannot bind
// them; a create that names one it does not own changes nothing.
func TestSecretsAPI(t *testing.T) {
	home := store.Home(t.TempDir())
	keys := apikey.Open(home)
	alice, err := keys.Create("alice")
	if err != nil {
		t.Fatal(err)
	}
	bob, _ := keys.Create("bob")
	if _, err := secret.Open(home).Set(secret.Spec{Name: "cli", Targets: []secret.Target{{Hosts: []string{"api.test"}, Header: "X-Key"}}, Source: secret.Source{Kind: secret.FromStdin}, Value: "cli-value"}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(New(&sandbox.Manager{Home: home}, keys, slog.New(slog.DiscardHandler)))
	defer srv.Close()
	call := func(key, method, path, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		req.Header.Set("X-API-Key", key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	code, body := call(alice, "POST", "/secrets", `{"name":"tok","value":"alice-value","hosts":["api.test"],"header":"Authorization","format":"Bearer %s"}`)
	var got secretResponse
	json.Unmarshal([]byte(body), &got)
	if code != http.StatusCreated || got.Name != "tok" || got.Env != "TOK" || !strings.HasPrefix(got.Placeholder, "paddock-secret-tok-") || strings.Contains(body, "alice-value") {
		t.Fatalf("set: %d %s", code, body)
	}
	for _, c := range []struct {
		key, method, path, body string
		code                    int
		says                    string
	}{
		{alice, "POST", "/secrets", `{"name":"cli","value":"x","hosts":["a.test"],"header":"X"}`, http.StatusConflict, ""},
		{bob, "POST", "/secrets", `{"name":"tok","value":"x","hosts":["a.test"],"header":"X"}`, http.StatusConflict, ""},
		{alice, "POST", "/secrets", `{"name":"bad name","value":"x","hosts":["a.test"],"header":"X"}`, http.StatusBadRequest, ""},
		{alice, "POST", "/secrets", `{"name":"novalue","hosts":["a.test"],"header":"X"}`, http.StatusBadRequest, ""},
		{alice, "POST", "/secrets", `{"name":"nl","value":"a\nb","hosts":["a.test"],"header":"X"}`, http.StatusBadRequest, ""},
		{bob, "DELETE", "/secrets/tok", ``, http.StatusNotFound, ""},
		{alice, "DELETE", "/secrets/cli", ``, http.StatusNotFound, ""},
		{alice, "POST", "/sandboxes", `{"templateID":"base","secrets":["cli"]}`, http.StatusBadRequest, `no secret named \"cli\" for this key`},
		{bob, "POST", "/sandboxes", `{"templateID":"base","secrets":["tok"]}`, http.StatusBadRequest, `no secret named \"tok\" for this key`},
		{alice, "POST", "/sandboxes", `{"templateID":"base","network":{"rules":{"api.test":[{"other":{}}]}}}`, http.StatusBadRequest, "only transform.headers"},
		{"", "GET", "/secrets", ``, http.StatusUnauthorized, ""},
	} {
		if code, body := call(c.key, c.method, c.path, c.body); code != c.code || !strings.Contains(body, c.says) {
			t.Errorf("%s %s %s: %d %s, want %d", c.method, c.path, c.body, code, body, c.code)
		}
	}
	if _, body := call(bob, "GET", "/secrets", ""); strings.TrimSpace(body) != "[]" {
		t.Fatalf("bob lists %s", body)
	}
	if code, body := call(alice, "GET", "/secrets", ""); code != 200 || !strings.Contains(body, `"tok"`) || strings.Contains(body, "cli") || strings.Contains(body, "value") {
		t.Fatalf("alice lists %d %s", code, body)
	}
	if code, _ := call(alice, "DELETE", "/secrets/tok", ""); code != http.StatusNoContent {
		t.Fatalf("delete: %d", code)
	}
	defs, _ := secret.Open(home).List()
	if len(defs) != 1 || defs[0].Name != "cli" {
		t.Fatalf("store after: %+v", defs)
	}
}

func TestRuleSecrets(t *testing.T) {
	var rules map[string][]ruleEntry
	json.Unmarshal([]byte(`{"API.test":[{"transform":{"headers":{"X-B":"2","Authorization":"Bearer 1"}}}],"b.test":[{"transform":{"headers":{"X":"3"}}}]}`), &rules)
	specs, err := ruleSecrets(rules)
	if err != nil || len(specs) != 3 {
		t.Fatalf("%+v %v", specs, err)
	}
	if s := specs[0]; s.Targets[0].Hosts[0] != "api.test" || s.Targets[0].Header != "Authorization" || s.Value != "Bearer 1" {
		t.Fatalf("first: %+v", s)
	}
	if s := specs[2]; s.Targets[0].Hosts[0] != "b.test" || s.Value != "3" {
		t.Fatalf("last: %+v", s)
	}
}
