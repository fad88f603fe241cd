package netpolicy

import "net/netip"

// blockedRange is an address range no connection reaches unless an
// explicit allow CIDR rule covers the address: the host, its networks and
// cloud metadata services.
type blockedRange struct {
	prefix netip.Prefix
	what   string
}

var blockedRanges = func() []blockedRange {
	list := []struct{ cidr, what string }{
		{"0.0.0.0/8", "this-network"},
		{"10.0.0.0/8", "private"},
		{"100.64.0.0/10", "cgnat"},
		{"127.0.0.0/8", "loopback"},
		{"169.254.0.0/16", "link-local/metadata"},
		{"172.16.0.0/12", "private"},
		{"192.0.0.0/24", "ietf-protocol"},
		{"192.168.0.0/16", "private"},
		{"198.18.0.0/15", "benchmark/sandbox-names"},
		{"224.0.0.0/4", "multicast"},
		{"240.0.0.0/4", "reserved"},
		{"::/128", "unspecified"},
		{"::1/128", "loopback"},
		{"64:ff9b::/96", "nat64"},
		{"fc00::/7", "ula"},
		{"fe80::/10", "link-local"},
		{"ff00::/8", "multicast"},
	}
	out := make([]blockedRange, len(list))
	for i, r := range list {
		out[i] = blockedRange{netip.MustParsePrefix(r.cidr), r.what}
	}
	return out
}()

// Blocked returns the default-blocked range that holds a, if any.
func Blocked(a netip.Addr) (netip.Prefix, string, bool) {
	a = a.Unmap()
	for _, r := range blockedRanges {
		if r.prefix.Contains(a) {
			return r.prefix, r.what, true
		}
	}
	return netip.Prefix{}, "", false
}
