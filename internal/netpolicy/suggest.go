package netpolicy

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"
)

// Suggest returns the smallest deny-all policy that allows every allowed
// connection in records: one host rule per name (ports 80 and 443 folded
// into the default), one /32 (or /128) CIDR rule per raw address and per
// address in a default-blocked range that a name reached. Pins and the DNS
// upstream are kept from base.
func Suggest(base Policy, records []Record) Policy {
	hosts := map[string]map[uint16]bool{}
	cidrs := map[string]map[uint16]bool{}
	add := func(m map[string]map[uint16]bool, k string, port uint16) {
		if m[k] == nil {
			m[k] = map[uint16]bool{}
		}
		m[k][port] = true
	}
	for _, r := range records {
		if r.Event != "connect" || r.Verdict != Allow || r.Proto != "tcp" {
			continue
		}
		a, aerr := netip.ParseAddr(r.Addr)
		if r.Name != "" {
			add(hosts, NormalizeName(r.Name), r.Port)
			if aerr == nil {
				if _, _, blocked := Blocked(a); blocked {
					add(cidrs, netip.PrefixFrom(a, a.BitLen()).String(), r.Port)
				}
			}
			continue
		}
		if aerr == nil {
			add(cidrs, netip.PrefixFrom(a, a.BitLen()).String(), r.Port)
		}
	}
	p := Policy{Preset: DenyAll, AddHosts: base.AddHosts, DNSUpstream: base.DNSUpstream}
	for _, h := range slices.Sorted(maps.Keys(hosts)) {
		ports := hosts[h]
		web := ports[80] || ports[443]
		if web {
			p.Allow = append(p.Allow, h)
		}
		for _, port := range slices.Sorted(maps.Keys(ports)) {
			if port != 80 && port != 443 {
				p.Allow = append(p.Allow, h+":"+strconv.Itoa(int(port)))
			}
		}
	}
	for _, c := range slices.Sorted(maps.Keys(cidrs)) {
		for _, port := range slices.Sorted(maps.Keys(cidrs[c])) {
			pr := netip.MustParsePrefix(c)
			if pr.Addr().Is6() {
				p.Allow = append(p.Allow, fmt.Sprintf("[%s]:%d", c, port))
			} else {
				p.Allow = append(p.Allow, fmt.Sprintf("%s:%d", c, port))
			}
		}
	}
	return p
}
