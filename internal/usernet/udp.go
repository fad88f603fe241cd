package usernet

import (
	"net/netip"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"

	"github.com/paddock-dev/paddock/internal/netpolicy"
)

// udpLogEvery limits drop records to one per destination per interval.
const udpLogEvery = 10 * time.Second

// dropUDP handles every UDP datagram that is not DNS to the sandbox
// resolver (which has its own endpoint): it is dropped, never sent.
func (n *Network) dropUDP(r *udp.ForwarderRequest) {
	id := r.ID()
	dst := netip.AddrPortFrom(netip.AddrFrom4(id.LocalAddress.As4()), id.LocalPort)
	now := time.Now()
	if !n.udpLogDue(dst, now) {
		return
	}
	rec := netpolicy.Record{Time: now, Event: "connect", Proto: "udp", Dest: dst.String(), Port: dst.Port(),
		Verdict: netpolicy.Deny, Rule: "default: UDP other than DNS to the sandbox resolver is dropped"}
	if name, ok := n.names.name(dst.Addr()); ok {
		rec.Name = name
	}
	n.record(rec)
}

// udpLogDue reports whether a drop to dst is logged at now, remembering
// at most maxUDPSeen destinations (the oldest are forgotten first).
func (n *Network) udpLogDue(dst netip.AddrPort, now time.Time) bool {
	n.udpMu.Lock()
	defer n.udpMu.Unlock()
	if last, ok := n.udpSeen[dst]; ok && now.Sub(last) < udpLogEvery {
		return false
	}
	if len(n.udpSeen) >= maxUDPSeen {
		for d, t := range n.udpSeen {
			if now.Sub(t) >= udpLogEvery {
				delete(n.udpSeen, d)
			}
		}
		if len(n.udpSeen) >= maxUDPSeen {
			// All recent: a flood, which the record limiter bounds.
			clear(n.udpSeen)
		}
	}
	n.udpSeen[dst] = now
	return true
}
