package netpolicy

import (
	"net/netip"
	"testing"
)

// BenchmarkDecide measures one decision against the balanced preset plus a
// few user rules, for a name late in the list (the slow path). Goal: < 5 µs.
func BenchmarkDecide(b *testing.B) {
	m := mustCompile(b, Policy{Preset: Balanced, Allow: []string{"*.corp.example", "10.1.0.0/16:5432"}, Deny: []string{"*.evil.example"}})
	q := Query{Proto: "tcp", Name: "openrouter.ai", Addr: netip.MustParseAddr("93.184.216.34"), Port: 443}
	b.ReportAllocs()
	for b.Loop() {
		if !m.Decide(q).Allowed() {
			b.Fatal("refused")
		}
	}
}

func BenchmarkDecideRawDenied(b *testing.B) {
	m := mustCompile(b, Policy{Preset: Balanced})
	q := Query{Proto: "tcp", Addr: netip.MustParseAddr("10.0.0.1"), Port: 443}
	b.ReportAllocs()
	for b.Loop() {
		m.Decide(q)
	}
}
