package netpolicy

import (
	"net/netip"
	"testing"
)

// Any policy file either fails to parse with an error or compiles, and a
// compiled policy decides any query without panicking; what it writes
// back parses to the same policy.
func FuzzParse(f *testing.F) {
	f.Add([]byte("preset: deny-all\nallow:\n  - '*.github.com'\n  - 10.0.0.0/8:5432\ndeny:\n  - evil.test:*\nadd_hosts:\n  a.test: 127.0.0.2\ndns_upstream: 127.0.0.1:53\n"))
	f.Add([]byte("preset: balanced\n"))
	f.Add([]byte("allow: [':::1', '*.', 'a..b', '1.2.3.4/33', 'x:70000']"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := Parse(b)
		if err != nil {
			return
		}
		m, err := Compile(p)
		if err != nil {
			return
		}
		m.Decide(Query{Proto: "tcp", Name: "a.github.com", Addr: netip.MustParseAddr("10.1.2.3"), Port: 443})
		m.PermitsName("evil.test")
		again, err := Parse(p.Marshal())
		if err != nil {
			t.Fatalf("a parsed policy's YAML does not parse: %v\n%s", err, p.Marshal())
		}
		if string(again.Marshal()) != string(p.Marshal()) {
			t.Fatalf("round trip changed the policy:\n%s\n---\n%s", p.Marshal(), again.Marshal())
		}
	})
}
