package netpolicy

import (
	"net"
	"net/netip"
	"sync"
	"time"
)

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
		{"168.63.129.16/32", "metadata (Azure)"},
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

// Blocked returns the default-blocked range that holds a, if any: one of
// blockedRanges, or one of this host's own addresses (a service bound to
// 0.0.0.0 on the host is the host's, whatever address reaches it).
func Blocked(a netip.Addr) (netip.Prefix, string, bool) {
	a = a.Unmap()
	for _, r := range blockedRanges {
		if r.prefix.Contains(a) {
			return r.prefix, r.what, true
		}
	}
	if hostAddrs.has(a) {
		return netip.PrefixFrom(a, a.BitLen()), "this host's address", true
	}
	return netip.Prefix{}, "", false
}

// hostAddrs is the host's interface addresses, read again when older than
// hostAddrsTTL (an address may come with DHCP or a new interface).
var hostAddrs = &addrSet{read: interfaceAddrs}

const hostAddrsTTL = 10 * time.Second

type addrSet struct {
	read func() []netip.Addr

	mu    sync.Mutex
	addrs map[netip.Addr]bool // guarded by mu
	at    time.Time           // when addrs was read
}

func (s *addrSet) has(a netip.Addr) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.addrs == nil || time.Since(s.at) > hostAddrsTTL {
		s.addrs = map[netip.Addr]bool{}
		for _, x := range s.read() {
			s.addrs[x.Unmap()] = true
		}
		s.at = time.Now()
	}
	return s.addrs[a]
}

func interfaceAddrs() []netip.Addr {
	ifAddrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	var out []netip.Addr
	for _, ia := range ifAddrs {
		if p, err := netip.ParsePrefix(ia.String()); err == nil {
			out = append(out, p.Addr())
		}
	}
	return out
}
