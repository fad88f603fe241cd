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
	if last, ok := n.udpSeen.Load(dst); ok && now.Sub(last.(time.Time)) < udpLogEvery {
		return
	}
	n.udpSeen.Store(dst, now)
	rec := netpolicy.Record{Time: now, Event: "connect", Proto: "udp", Dest: dst.String(), Port: dst.Port(),
		Verdict: netpolicy.Deny, Rule: "default: UDP other than DNS to the sandbox resolver is dropped"}
	if name, ok := n.names.name(dst.Addr()); ok {
		rec.Name = name
	}
	n.record(rec)
}
