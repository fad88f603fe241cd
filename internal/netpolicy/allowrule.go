package netpolicy

import (
	"net/netip"
	"strconv"
)

// AllowRuleFor is the allow rule that lets through what a denied record
// asked for: the name (ports 80 and 443, its own port beyond them) when
// the guest gave one, else the address it dialled as a /32 (or /128) with
// its port. It is "" when the record names neither.
func AllowRuleFor(r Record) string {
	port := r.Port
	ap, apErr := netip.ParseAddrPort(r.Dest)
	if port == 0 && apErr == nil {
		port = ap.Port()
	}
	if name := NormalizeName(r.Name); name != "" && ValidName(name) {
		if port == 0 || port == 80 || port == 443 {
			return name
		}
		return name + ":" + strconv.Itoa(int(port))
	}
	a := ap.Addr()
	if apErr != nil {
		var err error
		if a, err = netip.ParseAddr(r.Dest); err != nil {
			return ""
		}
	}
	a = a.Unmap()
	rule := netip.PrefixFrom(a, a.BitLen()).String()
	if a.Is6() && port != 0 {
		rule = "[" + rule + "]"
	}
	if port != 0 {
		rule += ":" + strconv.Itoa(int(port))
	}
	return rule
}
