package netpolicy

import (
	"net/netip"
	"strings"
	"testing"
)

func mustCompile(t testing.TB, p Policy) *Matcher {
	t.Helper()
	m, err := Compile(p)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestParseRule(t *testing.T) {
	tests := []struct {
		in, want string
		cidr     bool
		err      string
	}{
		{"pypi.org", "pypi.org", false, ""},
		{"PyPI.org.", "pypi.org", false, ""},
		{"*.github.com", "*.github.com", false, ""},
		{"github.com:22", "github.com:22", false, ""},
		{"*.example.com:*", "*.example.com:*", false, ""},
		{"203.0.113.0/24:5432", "203.0.113.0/24:5432", true, ""},
		{"203.0.113.7/24", "203.0.113.0/24", true, ""},
		{"10.0.0.5", "10.0.0.5/32", true, ""},
		{"2001:db8::/32", "2001:db8::/32", true, ""},
		{"[fd00::/8]:443", "[fd00::/8]:443", true, ""},
		{"a.*.com", "", false, "whole first label"},
		{"exa mple.com", "", false, "not allowed"},
		{"x.com:0", "", false, "port"},
		{"x.com:99999", "", false, "port"},
		{"300.1.1.1/8", "", false, "not a CIDR"},
		{"", "", false, "empty"},
	}
	for _, tt := range tests {
		r, err := ParseRule(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseRule(%q) err = %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseRule(%q): %v", tt.in, err)
			continue
		}
		if r.String() != tt.want || r.IsCIDR() != tt.cidr {
			t.Errorf("ParseRule(%q) = %q cidr=%v, want %q cidr=%v", tt.in, r.String(), r.IsCIDR(), tt.want, tt.cidr)
		}
	}
}

func TestDecide(t *testing.T) {
	a := netip.MustParseAddr
	pub := a("93.184.216.34")
	base := Policy{
		Preset: DenyAll,
		Allow: []string{"*.github.com", "pypi.org", "db.internal:5432", "203.0.113.0/24:5432",
			"allowed.test", "127.0.0.2/32:80", "any.test:*", "10.213.0.0/16"},
		Deny:     []string{"*.evil.github.com", "198.51.100.0/24", "gist.github.com:443"},
		AddHosts: map[string]string{"allowed.test": "127.0.0.2"},
	}
	tests := []struct {
		name   string
		p      Policy
		q      Query
		want   string
		ruleIn string
	}{
		{"exact name 443", base, Query{"tcp", "pypi.org", pub, 443}, Allow, "allow pypi.org"},
		{"exact name is case-insensitive", base, Query{"tcp", "PyPI.Org.", pub, 80}, Allow, "allow pypi.org"},
		{"default ports only", base, Query{"tcp", "pypi.org", pub, 22}, Deny, "no rule"},
		{"wildcard", base, Query{"tcp", "api.github.com", pub, 443}, Allow, "*.github.com"},
		{"wildcard deep", base, Query{"tcp", "a.b.github.com", pub, 443}, Allow, "*.github.com"},
		{"wildcard excludes apex", base, Query{"tcp", "github.com", pub, 443}, Deny, "no rule"},
		{"dot boundary", base, Query{"tcp", "evilgithub.com", pub, 443}, Deny, "no rule"},
		{"deny wins", base, Query{"tcp", "x.evil.github.com", pub, 443}, Deny, "deny *.evil.github.com"},
		{"deny on a port", base, Query{"tcp", "gist.github.com", pub, 443}, Deny, "deny gist.github.com:443"},
		{"deny on a port, other port", base, Query{"tcp", "gist.github.com", pub, 80}, Allow, "*.github.com"},
		{"name not known", base, Query{"tcp", "example.com", pub, 443}, Deny, "no rule"},
		{"name before resolve", base, Query{"tcp", "pypi.org", netip.Addr{}, 443}, Allow, "pypi.org"},
		{"name port rule", base, Query{"tcp", "db.internal", pub, 5432}, Allow, "db.internal:5432"},
		{"any port", base, Query{"tcp", "any.test", pub, 9999}, Allow, "any.test:*"},
		{"allowed name resolving to loopback", base, Query{"tcp", "pypi.org", a("127.0.0.1"), 443}, Deny, "loopback"},
		{"allowed name into private", base, Query{"tcp", "pypi.org", a("192.168.1.1"), 443}, Deny, "private"},
		{"allowed name into metadata", base, Query{"tcp", "pypi.org", a("169.254.169.254"), 80}, Deny, "link-local"},
		{"allowed name into cgnat", base, Query{"tcp", "pypi.org", a("100.64.1.1"), 443}, Deny, "cgnat"},
		{"allowed name into ula", base, Query{"tcp", "pypi.org", a("fd00::1"), 443}, Deny, "ula"},
		{"allowed name into v4-mapped loopback", base, Query{"tcp", "pypi.org", a("::ffff:127.0.0.1"), 443}, Deny, "loopback"},
		{"pinned loopback with cidr", base, Query{"tcp", "allowed.test", a("127.0.0.2"), 80}, Allow, "allow allowed.test"},
		{"pinned loopback cidr wrong port", base, Query{"tcp", "allowed.test", a("127.0.0.2"), 443}, Deny, "loopback"},
		{"raw ip without rule", base, Query{"tcp", "", pub, 443}, Deny, "no CIDR rule"},
		{"raw ip with cidr port", base, Query{"tcp", "", a("203.0.113.9"), 5432}, Allow, "203.0.113.0/24:5432"},
		{"raw ip with cidr other port", base, Query{"tcp", "", a("203.0.113.9"), 80}, Deny, "no CIDR"},
		{"raw private with explicit cidr", base, Query{"tcp", "", a("10.213.1.2"), 80}, Allow, "10.213.0.0/16"},
		{"raw loopback", base, Query{"tcp", "", a("127.0.0.1"), 80}, Deny, "loopback"},
		{"deny cidr beats name", base, Query{"tcp", "pypi.org", a("198.51.100.1"), 443}, Deny, "deny 198.51.100.0/24"},
		{"allow-all public ip", Policy{Preset: AllowAll}, Query{"tcp", "", pub, 443}, Allow, "preset allow-all"},
		{"allow-all name", Policy{Preset: AllowAll}, Query{"tcp", "example.com", pub, 25}, Allow, "preset allow-all"},
		{"allow-all still blocks private", Policy{Preset: AllowAll}, Query{"tcp", "", a("10.0.0.1"), 443}, Deny, "private"},
		{"allow-all name into metadata", Policy{Preset: AllowAll}, Query{"tcp", "m.test", a("169.254.169.254"), 80}, Deny, "link-local"},
		{"allow-all name into Azure's metadata", Policy{Preset: AllowAll}, Query{"tcp", "m.test", a("168.63.129.16"), 80}, Deny, "metadata (Azure)"},
		{"learn", Policy{Preset: Learn}, Query{"tcp", "example.com", pub, 443}, Allow, "preset learn"},
		{"balanced registry", Policy{Preset: Balanced}, Query{"tcp", "registry.npmjs.org", pub, 443}, Allow, "preset balanced"},
		{"balanced git ssh", Policy{Preset: Balanced}, Query{"tcp", "github.com", pub, 22}, Allow, "github.com:22"},
		{"balanced other", Policy{Preset: Balanced}, Query{"tcp", "example.com", pub, 443}, Deny, "no rule"},
		{"balanced raw ip", Policy{Preset: Balanced}, Query{"tcp", "", pub, 443}, Deny, "no CIDR"},
		{"balanced user deny beats preset", Policy{Preset: Balanced, Deny: []string{"pypi.org"}}, Query{"tcp", "pypi.org", pub, 443}, Deny, "deny pypi.org"},
		{"deny-all", Policy{Preset: DenyAll}, Query{"tcp", "pypi.org", pub, 443}, Deny, "no rule"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := mustCompile(t, tt.p).Decide(tt.q)
			if d.Verdict != tt.want || !strings.Contains(d.Rule, tt.ruleIn) {
				t.Errorf("Decide(%+v) = %+v, want %s by a rule containing %q", tt.q, d, tt.want, tt.ruleIn)
			}
		})
	}
}

func TestPermitsName(t *testing.T) {
	m := mustCompile(t, Policy{Preset: DenyAll, Allow: []string{"*.github.com", "x.test:5432"}, Deny: []string{"bad.github.com:*", "half.github.com:80"}})
	for name, want := range map[string]bool{
		"api.github.com": true, "x.test": true, "bad.github.com": false, "half.github.com": true,
		"github.com": false, "example.com": false,
	} {
		if got := m.PermitsName(name).Allowed(); got != want {
			t.Errorf("PermitsName(%q) = %v, want %v", name, got, want)
		}
	}
	if !mustCompile(t, Policy{Preset: Learn}).PermitsName("anything.example").Allowed() {
		t.Error("learn should answer every name")
	}
}

func TestCompileGathersErrors(t *testing.T) {
	_, err := Compile(Policy{Preset: "open", Allow: []string{"a.*.b"}, Deny: []string{"1.2.3.4/99"},
		AddHosts: map[string]string{"x.test": "nope"}, DNSUpstream: "resolver"})
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"preset", "a.*.b", "1.2.3.4/99", "x.test", "dns upstream"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func TestYAMLRoundTrip(t *testing.T) {
	p := Policy{Preset: DenyAll, Allow: []string{"*.github.com", "203.0.113.0/24:5432"}, Deny: []string{"*.example.com"},
		AddHosts: map[string]string{"allowed.test": "127.0.0.2"}, DNSUpstream: "127.0.0.1:5353"}
	q, err := Parse(p.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	if string(q.Marshal()) != string(p.Marshal()) {
		t.Errorf("round trip:\n%s\n%s", p.Marshal(), q.Marshal())
	}
	if _, err := Parse([]byte("preset: deny-all\nalow: [x]\n")); err == nil {
		t.Error("unknown field accepted")
	}
}

func TestAddRuleLatestWins(t *testing.T) {
	p := Policy{Preset: DenyAll, Deny: []string{"x.test"}}
	if err := p.AddRule(true, "X.test"); err != nil {
		t.Fatal(err)
	}
	if len(p.Deny) != 0 || len(p.Allow) != 1 || p.Allow[0] != "x.test" {
		t.Errorf("got %+v", p)
	}
}

func TestSuggest(t *testing.T) {
	recs := []Record{
		{Event: "connect", Proto: "tcp", Name: "api.github.com", Addr: "140.82.1.1", Port: 443, Verdict: Allow},
		{Event: "connect", Proto: "tcp", Name: "api.github.com", Addr: "140.82.1.1", Port: 80, Verdict: Allow},
		{Event: "connect", Proto: "tcp", Name: "db.test", Addr: "203.0.113.5", Port: 5432, Verdict: Allow},
		{Event: "connect", Proto: "tcp", Name: "allowed.test", Addr: "127.0.0.2", Port: 80, Verdict: Allow},
		{Event: "connect", Proto: "tcp", Addr: "203.0.113.9", Port: 22, Verdict: Allow},
		{Event: "connect", Proto: "tcp", Name: "refused.test", Port: 443, Verdict: Deny},
		{Event: "dns", Proto: "dns", Name: "looked.up", Verdict: Allow},
	}
	p := Suggest(Policy{Preset: Learn, AddHosts: map[string]string{"allowed.test": "127.0.0.2"}}, recs)
	want := []string{"allowed.test", "api.github.com", "db.test:5432", "127.0.0.2/32:80", "203.0.113.9/32:22"}
	if strings.Join(p.Allow, " ") != strings.Join(want, " ") || p.Preset != DenyAll || p.AddHosts["allowed.test"] != "127.0.0.2" {
		t.Errorf("Suggest = %+v, want allow %v", p, want)
	}
	m := mustCompile(t, p)
	for _, r := range recs[:5] {
		a, _ := netip.ParseAddr(r.Addr)
		if d := m.Decide(Query{"tcp", r.Name, a, r.Port}); !d.Allowed() {
			t.Errorf("suggested policy refuses %+v: %s", r, d.Rule)
		}
	}
	if m.Decide(Query{"tcp", "refused.test", netip.MustParseAddr("93.184.216.34"), 443}).Allowed() {
		t.Error("suggested policy allows what was refused")
	}
}

func TestHostAddressesBlocked(t *testing.T) {
	own := netip.MustParseAddr("203.0.113.50")
	saved := hostAddrs
	hostAddrs = &addrSet{read: func() []netip.Addr { return []netip.Addr{own} }}
	t.Cleanup(func() { hostAddrs = saved })
	for _, tt := range []struct {
		p    Policy
		q    Query
		want string
		rule string
	}{
		{Policy{Preset: AllowAll}, Query{"tcp", "", own, 8080}, Deny, "this host's address 203.0.113.50/32"},
		{Policy{Preset: AllowAll}, Query{"tcp", "svc.test", netip.MustParseAddr("::ffff:203.0.113.50"), 443}, Deny, "this host's address"},
		{Policy{Preset: AllowAll}, Query{"tcp", "", netip.MustParseAddr("203.0.113.51"), 8080}, Allow, "preset allow-all"},
		{Policy{Preset: DenyAll, Allow: []string{"203.0.113.50/32:8080"}}, Query{"tcp", "", own, 8080}, Allow, "allow 203.0.113.50/32:8080"},
	} {
		if d := mustCompile(t, tt.p).Decide(tt.q); d.Verdict != tt.want || !strings.Contains(d.Rule, tt.rule) {
			t.Errorf("%s %+v: %+v, want %s by %q", tt.p.Preset, tt.q, d, tt.want, tt.rule)
		}
	}
}
