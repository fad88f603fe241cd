package usernet

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/miekg/dns"

	"github.com/paddock-dev/paddock/internal/netpolicy"
)

// nameTTL is the TTL of synthetic answers: they never change for the life
// of the sandbox, but a policy change should be seen soon by the guest's
// cache, if it has one.
const nameTTL = 30

// ServeDNS is the sandbox resolver. It answers only names some allow rule
// could permit, each with its synthetic address; everything else gets
// NXDOMAIN and is never sent upstream. Only A queries get addresses: the
// sandbox network is IPv4 only, so AAAA and other types get an empty answer.
func (n *Network) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	resp := new(dns.Msg)
	resp.SetReply(req)
	resp.RecursionAvailable = true
	defer w.WriteMsg(resp)
	if req.Opcode != dns.OpcodeQuery || len(req.Question) != 1 {
		resp.Rcode = dns.RcodeNotImplemented
		return
	}
	q := req.Question[0]
	name := netpolicy.NormalizeName(q.Name)
	m := n.matcher()
	// The type tells apart the A and AAAA queries a resolver sends for
	// one lookup, which would otherwise read as the same line twice.
	rec := netpolicy.Record{Time: time.Now(), Event: "dns", Proto: "dns", Name: name, Type: dns.Type(q.Qtype).String()}
	d := m.PermitsName(name)
	if !netpolicy.ValidName(name) {
		d = netpolicy.Decision{Verdict: netpolicy.Deny, Rule: "default: not a host name"}
	}
	rec.Verdict, rec.Rule = d.Verdict, d.Rule
	defer func() { n.record(rec) }()
	if !d.Allowed() || q.Qclass != dns.ClassINET {
		resp.Rcode = dns.RcodeNameError
		return
	}
	// The name must exist: pinned, or known upstream.
	if _, pinned := m.Pin(name); !pinned {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := n.lookup(ctx, m.Upstream(), name)
		if errors.Is(err, errBusy) {
			resp.Rcode = dns.RcodeServerFailure
			rec.Verdict, rec.Rule = netpolicy.Deny, fmt.Sprintf("default: too many DNS lookups at once (%d)", maxLookups)
			return
		}
		if errors.Is(err, errNoSuchName) {
			resp.Rcode = dns.RcodeNameError
			rec.Error = "upstream: no such name"
			return
		}
		if err != nil {
			resp.Rcode = dns.RcodeServerFailure
			rec.Error = err.Error()
			return
		}
	}
	if q.Qtype != dns.TypeA && q.Qtype != dns.TypeANY {
		return
	}
	a, err := n.names.addr(name)
	if err != nil {
		resp.Rcode = dns.RcodeServerFailure
		rec.Error = err.Error()
		return
	}
	rec.Dest = a.String()
	resp.Answer = append(resp.Answer, &dns.A{
		Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: nameTTL},
		A:   a.AsSlice(),
	})
}

// errBusy means maxLookups upstream lookups are already waiting.
var errBusy = errors.New("too many DNS lookups at once")

// lookup asks the resolver within the sandbox's cap on lookups in flight.
func (n *Network) lookup(ctx context.Context, upstream, name string) ([]netip.Addr, error) {
	if !n.lookups.take() {
		return nil, errBusy
	}
	defer n.lookups.give()
	return n.resolver.lookup(ctx, upstream, name)
}
