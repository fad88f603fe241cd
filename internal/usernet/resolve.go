package usernet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// errNoSuchName is an upstream NXDOMAIN.
var errNoSuchName = errors.New("no such name")

// resolver asks the host-side upstream for A records, caching answers for
// their TTL (at least minTTL, at most maxTTL). Pinned names never reach it.
//
// Invariant: cache entries are replaced whole, never edited.
type resolver struct {
	hostServers []string // from the host's /etc/resolv.conf, ADDR:PORT

	mu    sync.Mutex
	cache map[string]cached // guarded by mu; key: upstream + " " + name
}

type cached struct {
	addrs   []netip.Addr
	err     error
	expires time.Time
}

const (
	minTTL = 5 * time.Second
	maxTTL = 5 * time.Minute
)

func newResolver(resolvConf string) *resolver {
	r := &resolver{cache: map[string]cached{}}
	if cc, err := dns.ClientConfigFromFile(resolvConf); err == nil {
		for _, s := range cc.Servers {
			r.hostServers = append(r.hostServers, net.JoinHostPort(s, cc.Port))
		}
	}
	return r
}

// lookup returns name's IPv4 addresses from upstream ("" = the host's).
func (r *resolver) lookup(ctx context.Context, upstream, name string) ([]netip.Addr, error) {
	key := upstream + " " + name
	r.mu.Lock()
	c, ok := r.cache[key]
	r.mu.Unlock()
	if ok && time.Now().Before(c.expires) {
		return c.addrs, c.err
	}
	addrs, ttl, err := r.query(ctx, upstream, name)
	if err == nil || errors.Is(err, errNoSuchName) {
		ttl = min(max(ttl, minTTL), maxTTL)
		r.mu.Lock()
		r.pruneLocked()
		r.cache[key] = cached{addrs: addrs, err: err, expires: time.Now().Add(ttl)}
		r.mu.Unlock()
	}
	return addrs, err
}

func (r *resolver) query(ctx context.Context, upstream, name string) ([]netip.Addr, time.Duration, error) {
	servers := r.hostServers
	if upstream != "" {
		servers = []string{upstream}
	}
	if len(servers) == 0 {
		// No resolv.conf: the Go resolver (hosts file and its defaults).
		addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip4", name)
		var dnsErr *net.DNSError
		if errors.As(err, &dnsErr) && dnsErr.IsNotFound {
			return nil, 0, errNoSuchName
		}
		return addrs, time.Minute, err
	}
	q := new(dns.Msg)
	q.SetQuestion(dns.Fqdn(name), dns.TypeA)
	q.RecursionDesired = true
	c := &dns.Client{Timeout: 3 * time.Second}
	var lastErr error
	for _, s := range servers {
		resp, _, err := c.ExchangeContext(ctx, q, s)
		if err == nil && resp.Truncated {
			tc := &dns.Client{Net: "tcp", Timeout: 3 * time.Second}
			resp, _, err = tc.ExchangeContext(ctx, q, s)
		}
		if err != nil {
			lastErr = err
			continue
		}
		switch resp.Rcode {
		case dns.RcodeSuccess:
		case dns.RcodeNameError:
			return nil, negativeTTL(resp), errNoSuchName
		default:
			lastErr = fmt.Errorf("upstream %s: %s", s, dns.RcodeToString[resp.Rcode])
			continue
		}
		var addrs []netip.Addr
		ttl := maxTTL
		for _, rr := range resp.Answer {
			if a, ok := rr.(*dns.A); ok {
				if ip, ok := netip.AddrFromSlice(a.A.To4()); ok {
					addrs = append(addrs, ip)
					ttl = min(ttl, time.Duration(a.Hdr.Ttl)*time.Second)
				}
			}
		}
		if len(addrs) == 0 {
			return nil, negativeTTL(resp), nil
		}
		return addrs, ttl, nil
	}
	return nil, 0, fmt.Errorf("resolve %s: %w", name, lastErr)
}

func negativeTTL(m *dns.Msg) time.Duration {
	for _, rr := range m.Ns {
		if soa, ok := rr.(*dns.SOA); ok {
			return time.Duration(min(soa.Minttl, soa.Hdr.Ttl)) * time.Second
		}
	}
	return minTTL
}

// pruneLocked makes room for one more answer: expired ones go first; if
// the cache is still full, entries picked at random (map order) make a
// tenth of it free. r.mu is held.
func (r *resolver) pruneLocked() {
	if len(r.cache) < maxCached {
		return
	}
	now := time.Now()
	for k, c := range r.cache {
		if now.After(c.expires) {
			delete(r.cache, k)
		}
	}
	for k := range r.cache {
		if len(r.cache) < maxCached-maxCached/10 {
			break
		}
		delete(r.cache, k)
	}
}
