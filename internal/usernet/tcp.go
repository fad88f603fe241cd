package usernet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/waiter"

	"github.com/paddock-dev/paddock/internal/netpolicy"
)

const (
	dialTimeout = 10 * time.Second
	sniffMax    = 16 << 10
)

// sniffTimeout is how long a connection on port 80 or 443 has to name
// its host (a variable for the tests).
var sniffTimeout = 10 * time.Second

// forwardTCP decides one guest connection attempt and, when allowed,
// joins it to a host-side connection it dials itself. A connection to a
// synthetic address is a connection to its name: the name is checked, then
// (on ports 80 and 443) the TLS SNI or HTTP Host must name the same host,
// then the name is resolved on the host side (or taken from add_hosts) and
// the address checked too. Anything else is a raw address and needs a CIDR
// rule. Refusals before the handshake answer with a reset.
func (n *Network) forwardTCP(r *tcp.ForwarderRequest) {
	id := r.ID()
	dst := netip.AddrFrom4(id.LocalAddress.As4())
	port := id.LocalPort
	m := n.matcher()
	rec := netpolicy.Record{Time: time.Now(), Event: "connect", Proto: "tcp", Dest: netip.AddrPortFrom(dst, port).String(), Port: port}
	refuse := func(d netpolicy.Decision) {
		rec.Verdict, rec.Rule = d.Verdict, d.Rule
		n.record(rec)
		r.Complete(true)
	}

	if !n.conns.take() {
		refuse(netpolicy.Decision{Verdict: netpolicy.Deny, Rule: fmt.Sprintf("default: too many connections at once (%d)", maxConns)})
		return
	}
	defer n.conns.give()
	if dst == GatewayIP {
		refuse(netpolicy.Decision{Verdict: netpolicy.Deny, Rule: "default: the gateway serves only DNS"})
		return
	}
	if !NamesPrefix.Contains(dst) {
		d := m.Decide(netpolicy.Query{Proto: "tcp", Addr: dst, Port: port})
		if !d.Allowed() {
			refuse(d)
			return
		}
		rec.Addr = dst.String()
		n.connect(r, m, rec, d, nil, []netip.Addr{dst})
		return
	}
	name, ok := n.names.name(dst)
	if !ok {
		refuse(netpolicy.Decision{Verdict: netpolicy.Deny, Rule: "default: not an address the sandbox resolver handed out"})
		return
	}
	rec.Name = name
	if d := m.Decide(netpolicy.Query{Proto: "tcp", Name: name, Port: port}); !d.Allowed() {
		refuse(d)
		return
	}
	addrs, err := n.resolve(m, name)
	if err != nil {
		rec.Error = "resolve: " + err.Error()
		refuse(netpolicy.Decision{Verdict: netpolicy.Deny, Rule: "default: " + name + " does not resolve"})
		return
	}
	allowed, decision, addr := allowedAddrs(m, name, port, addrs)
	rec.Addr = addr.String()
	if len(allowed) == 0 {
		refuse(decision)
		return
	}
	check := nameCheck(m, name, port, allowed)
	if check == nil && n.cfg.Intercept != nil && n.cfg.Intercept.Intercepts(name, port) {
		// A port a bound secret names (api.example:8443): its first
		// bytes are read, so the interceptor can take the connection.
		check = func([]byte) netpolicy.Decision { return netpolicy.Decision{} }
	}
	n.connect(r, m, rec, decision, check, allowed)
}

// resolve gives name's addresses: its add_hosts pin, else what the
// upstream resolver answers within 5 s.
func (n *Network) resolve(m *netpolicy.Matcher, name string) ([]netip.Addr, error) {
	if a, ok := m.Pin(name); ok {
		return []netip.Addr{a}, nil
	}
	ctx, cancel := context.WithTimeout(n.ctx, 5*time.Second)
	defer cancel()
	addrs, err := n.lookup(ctx, m.Upstream(), name)
	if err == nil && len(addrs) == 0 {
		err = errors.New("no IPv4 address")
	}
	return addrs, err
}

// allowedAddrs keeps the addresses of name the policy allows on port. The
// decision that explains the outcome is the first allowed address's, else
// the first refused one's; addr is the address it is about.
func allowedAddrs(m *netpolicy.Matcher, name string, port uint16, addrs []netip.Addr) (allowed []netip.Addr, decision netpolicy.Decision, addr netip.Addr) {
	for _, a := range addrs {
		d := m.Decide(netpolicy.Query{Proto: "tcp", Name: name, Addr: a, Port: port})
		if d.Allowed() {
			if len(allowed) == 0 {
				decision, addr = d, a
			}
			allowed = append(allowed, a)
		} else if decision.Verdict == "" {
			decision, addr = d, a
		}
	}
	return allowed, decision, addr
}

// nameCheck is, on ports 80 and 443, the check of a connection's first
// bytes: its TLS SNI or HTTP Host must be name (none at all only where a
// rule allows the address itself); nil on other ports.
func nameCheck(m *netpolicy.Matcher, name string, port uint16, allowed []netip.Addr) func([]byte) netpolicy.Decision {
	if port != 80 && port != 443 {
		return nil
	}
	return func(b []byte) netpolicy.Decision {
		seen, _ := sniffName(b)
		if seen == "" && !rawAllowed(m, allowed, port) {
			return netpolicy.Decision{Verdict: netpolicy.Deny, Rule: fmt.Sprintf("default: no TLS SNI or HTTP Host to check against %s (within %s and %d bytes)", name, sniffTimeout, sniffMax)}
		}
		if seen != "" && netpolicy.NormalizeName(seen) != name {
			what := "HTTP Host"
			if len(b) > 0 && b[0] == 0x16 {
				what = "TLS SNI"
			}
			return netpolicy.Decision{Verdict: netpolicy.Deny, Rule: fmt.Sprintf("default: %s %q is not %s (domain fronting)", what, seen, name)}
		}
		return netpolicy.Decision{}
	}
}

// rawAllowed reports whether a rule allows one of addrs as a raw address
// (a CIDR rule, or allow-all): then a connection need not name its host.
func rawAllowed(m *netpolicy.Matcher, addrs []netip.Addr, port uint16) bool {
	for _, a := range addrs {
		if m.Decide(netpolicy.Query{Proto: "tcp", Addr: a, Port: port}).Allowed() {
			return true
		}
	}
	return false
}

// connect dials addrs in turn and relays. With check set it first
// completes the guest's handshake and reads the start of the stream
// (SNI/Host), which check may refuse; a connection Config.Intercept
// takes then is served by it, with a dial of addrs, instead.
func (n *Network) connect(r *tcp.ForwarderRequest, m *netpolicy.Matcher, rec netpolicy.Record, d netpolicy.Decision, check func([]byte) netpolicy.Decision, addrs []netip.Addr) {
	dialWith := n.dialer(addrs, r.ID().LocalPort)
	var (
		out  net.Conn
		err  error
		head []byte
	)
	if check == nil {
		// Dial first, so an unreachable destination is a reset in the guest.
		if out, err = dialWith(n.ctx); err != nil {
			rec.Verdict, rec.Rule, rec.Error = d.Verdict, d.Rule, "dial: "+err.Error()
			n.record(rec)
			r.Complete(true)
			return
		}
	}
	var wq waiter.Queue
	ep, tcpErr := r.CreateEndpoint(&wq)
	r.Complete(false)
	if tcpErr != nil {
		if out != nil {
			out.Close()
		}
		rec.Verdict, rec.Rule, rec.Error = d.Verdict, d.Rule, "guest endpoint: "+tcpErr.String()
		n.record(rec)
		return
	}
	in := gonet.NewTCPConn(&wq, ep)
	if check != nil {
		var ok bool
		if out, head, ok = n.checkHead(in, ep.Abort, rec, d, check, dialWith); !ok {
			return
		}
	}
	rec.Verdict, rec.Rule = d.Verdict, d.Rule
	n.record(rec)
	sent, received := relay(in, out, head)
	rec.Time, rec.Event, rec.Sent, rec.Received = time.Now(), "close", sent, received
	n.record(rec)
}

// dialer dials addrs in turn on port, each within dialTimeout, and gives
// the first connection made.
func (n *Network) dialer(addrs []netip.Addr, port uint16) func(context.Context) (net.Conn, error) {
	p := strconv.Itoa(int(port))
	return func(ctx context.Context) (net.Conn, error) {
		var err error
		for _, a := range addrs {
			ctx, cancel := context.WithTimeout(ctx, dialTimeout)
			var c net.Conn
			c, err = n.cfg.Dial(ctx, "tcp", net.JoinHostPort(a.String(), p))
			cancel()
			if err == nil {
				return c, nil
			}
		}
		return nil, err
	}
}

// checkHead reads the start of the guest's stream on in and checks it. A
// refused connection is aborted and one Config.Intercept takes is served
// there; either way it is done with (ok false). Otherwise it dials the
// destination and returns that connection and the bytes read.
func (n *Network) checkHead(in *gonet.TCPConn, abort func(), rec netpolicy.Record, d netpolicy.Decision, check func([]byte) netpolicy.Decision, dialWith func(context.Context) (net.Conn, error)) (out net.Conn, head []byte, ok bool) {
	refuse := func() {
		n.record(rec)
		abort()
		in.Close()
	}
	if !n.sniffing.take() {
		rec.Verdict, rec.Rule = netpolicy.Deny, fmt.Sprintf("default: too many connections waiting for their first bytes (%d)", maxSniffing)
		refuse()
		return nil, nil, false
	}
	head, _ = readHead(in)
	n.sniffing.give()
	if cd := check(head); cd.Verdict != "" {
		rec.Verdict, rec.Rule = cd.Verdict, cd.Rule
		refuse()
		return nil, nil, false
	}
	if n.intercepts(rec, head) {
		rec.Verdict, rec.Rule = d.Verdict, d.Rule
		n.record(rec)
		sent, received := n.cfg.Intercept.Serve(n.ctx, in, head, rec.Name, rec.Port, dialWith)
		rec.Time, rec.Event, rec.Sent, rec.Received = time.Now(), "close", sent, received
		n.record(rec)
		return nil, nil, false
	}
	out, err := dialWith(n.ctx)
	if err != nil {
		rec.Verdict, rec.Rule, rec.Error = d.Verdict, d.Rule, "dial: "+err.Error()
		refuse()
		return nil, nil, false
	}
	return out, head, true
}

// intercepts reports whether the connection rec describes, which began
// with head, goes to Config.Intercept: a connection to a name whose TLS
// SNI or HTTP Host is that name, which the interceptor wants.
func (n *Network) intercepts(rec netpolicy.Record, head []byte) bool {
	if n.cfg.Intercept == nil || rec.Name == "" {
		return false
	}
	seen, _ := sniffName(head)
	return seen != "" && netpolicy.NormalizeName(seen) == rec.Name && n.cfg.Intercept.Intercepts(rec.Name, rec.Port)
}

// readHead reads until the SNI or Host can be judged, sniffMax bytes, the
// stream's end, or sniffTimeout.
func readHead(c *gonet.TCPConn) ([]byte, error) {
	c.SetReadDeadline(time.Now().Add(sniffTimeout))
	defer c.SetReadDeadline(time.Time{})
	buf := make([]byte, 0, 4096)
	for len(buf) < sniffMax {
		if len(buf) == cap(buf) {
			buf = append(buf, make([]byte, cap(buf))...)[:len(buf)]
		}
		k, err := c.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+k]
		if _, serr := sniffName(buf); serr == nil {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
	return buf, nil
}

type closeWriter interface{ CloseWrite() error }

// relay copies both ways until both directions end, half-closing as each
// does, and returns the bytes sent guest->host and back.
func relay(in, out net.Conn, head []byte) (sent, received int64) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		received, _ = io.Copy(in, out)
		if cw, ok := in.(closeWriter); ok {
			cw.CloseWrite()
		}
	}()
	if len(head) > 0 {
		k, err := out.Write(head)
		sent += int64(k)
		if err != nil {
			out.Close()
		}
	}
	k, _ := io.Copy(out, in)
	sent += k
	if cw, ok := out.(closeWriter); ok {
		cw.CloseWrite()
	}
	wg.Wait()
	in.Close()
	out.Close()
	return sent, received
}
