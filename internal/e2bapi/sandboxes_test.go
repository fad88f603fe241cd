package e2bapi

import (
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/paddock-dev/paddock/internal/netpolicy"
)

func TestPolicyFromE2B(t *testing.T) {
	f := false
	cases := []struct {
		name         string
		req          newSandbox
		preset       string
		allow, deny  []string
		none, broken bool
	}{
		{name: "no settings: paddock's default", req: newSandbox{}, none: true},
		{name: "no internet", req: newSandbox{AllowInternetAccess: &f}, preset: netpolicy.DenyAll},
		{name: "deny everything but", req: newSandbox{Network: &networkConfig{DenyOut: []string{"0.0.0.0/0"}, AllowOut: []string{"api.example.com", "10.1.2.3"}}},
			preset: netpolicy.DenyAll, allow: []string{"api.example.com:*", "10.1.2.3/32"}},
		{name: "one range denied", req: newSandbox{Network: &networkConfig{DenyOut: []string{"203.0.113.0/24"}}},
			preset: netpolicy.DefaultPreset, deny: []string{"203.0.113.0/24"}},
		{name: "a broken entry", req: newSandbox{Network: &networkConfig{AllowOut: []string{"bad host!"}}}, broken: true},
	}
	for _, c := range cases {
		p, err := c.req.policy()
		switch {
		case c.broken:
			if err == nil {
				t.Errorf("%s: no error", c.name)
			}
			continue
		case err != nil:
			t.Errorf("%s: %v", c.name, err)
			continue
		case c.none:
			if p != nil {
				t.Errorf("%s: %+v, want none", c.name, p)
			}
			continue
		}
		if p.Preset != c.preset || !slices.Equal(p.Allow, c.allow) || !slices.Equal(p.Deny, c.deny) {
			t.Errorf("%s: preset %s allow %q deny %q; want %s %q %q", c.name, p.Preset, p.Allow, p.Deny, c.preset, c.allow, c.deny)
		}
		if _, err := netpolicy.Compile(*p); err != nil {
			t.Errorf("%s: does not compile: %v", c.name, err)
		}
	}
}

func TestMetadataFilter(t *testing.T) {
	md := map[string]string{"user": "abc", "app": "prod"}
	for q, want := range map[string]bool{"": true, "user=abc": true, "user=abc&app=prod": true, "user=abd": false, "other=1": false} {
		v, _ := url.ParseQuery(q)
		if got := matches(md, v); got != want {
			t.Errorf("%q: %v, want %v", q, got, want)
		}
	}
}

// The OpenAPI document is valid JSON and describes every route served.
func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	var doc struct {
		Paths map[string]map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(openapiDoc, &doc); err != nil {
		t.Fatal(err)
	}
	s := New(nil, nil, nil)
	for _, pattern := range s.patterns {
		method, path, _ := strings.Cut(pattern, " ")
		if _, ok := doc.Paths[path][strings.ToLower(method)]; !ok {
			t.Errorf("%s is served but not in openapi.json", pattern)
		}
	}
}
