package usernet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/link/ethernet"
	"gvisor.dev/gvisor/pkg/tcpip/network/arp"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"

	"github.com/paddock-dev/paddock/internal/netpolicy"
)

// The virtual network every sandbox gets. Each sandbox has its own, so
// they can all use the same addresses.
var (
	Subnet    = netip.MustParsePrefix("192.168.127.0/24")
	GatewayIP = netip.MustParseAddr("192.168.127.1") // also the resolver
	GuestIP   = netip.MustParseAddr("192.168.127.2")
	// NamesPrefix holds the synthetic addresses the resolver hands out,
	// routed to the gateway; it is in netpolicy's blocked ranges, so no
	// raw connection ever reaches a real address there.
	NamesPrefix = netip.MustParsePrefix("198.18.0.0/16")
)

const (
	// MTU of the guest interface and the virtual link.
	MTU        = 65520
	gatewayMAC = "5a:94:ef:e4:0c:dd"
	nicID      = 1
)

// GuestConfig is what the guest agent needs to configure its interface.
type GuestConfig struct {
	Interface   string
	Address     string // CIDR
	Gateway     string
	Nameservers []string
	MTU         uint32
}

// Guest returns the interface configuration for the guest.
func Guest() GuestConfig {
	return GuestConfig{
		Interface:   "eth0",
		Address:     netip.PrefixFrom(GuestIP, Subnet.Bits()).String(),
		Gateway:     GatewayIP.String(),
		Nameservers: []string{GatewayIP.String()},
		MTU:         MTU,
	}
}

// Config configures a Network.
type Config struct {
	Policy *netpolicy.Matcher
	// Record receives every decision and every close; it must not block
	// for long. Nil discards them.
	Record func(netpolicy.Record)
	Log    *slog.Logger
	// ResolvConf names the host's resolver configuration (default
	// /etc/resolv.conf), used when the policy names no DNS upstream.
	ResolvConf string
	// Dial opens host-side connections; nil: a net.Dialer.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Intercept, when set, is offered every allowed connection to a name
	// whose TLS SNI or HTTP Host names that name, on ports 80 and 443 and
	// on any port it says it intercepts for that name (whose first bytes
	// the forwarder then reads, as on 443); the connections it takes it
	// serves itself (secret injection, package inject) instead of their
	// being relayed.
	Intercept Interceptor
}

// Interceptor serves some guest connections itself instead of the
// forwarder's relaying them.
type Interceptor interface {
	// Intercepts reports whether the connection to name (normalised, as
	// the policy allowed it) on port is for the interceptor. It is asked
	// once per connection and must be cheap.
	Intercepts(name string, port uint16) bool
	// Serve serves guest, whose first bytes head the forwarder has read
	// already, until it ends, and closes it. dial opens a connection to
	// the address the policy allowed. It returns the bytes read from the
	// guest and written to it.
	Serve(ctx context.Context, guest net.Conn, head []byte, name string, port uint16, dial func(ctx context.Context) (net.Conn, error)) (sent, received int64)
}

// Network is one sandbox's network. Its policy may be replaced at any
// time (SetPolicy); connections already open keep running, new ones obey.
type Network struct {
	cfg      Config
	log      *slog.Logger
	stack    *stack.Stack
	link     *qemuLink
	names    *nameTable
	resolver *resolver
	policy   atomic.Pointer[netpolicy.Matcher]
	dns      []*dns.Server
	ctx      context.Context
	cancel   context.CancelFunc
	conns    slots // maxConns
	sniffing slots // maxSniffing
	lookups  slots // maxLookups
	records  *netpolicy.RecordLimiter

	udpMu   sync.Mutex
	udpSeen map[netip.AddrPort]time.Time // guarded by udpMu: the last logged drop per destination
}

// New builds the stack, the resolver and the forwarders. Attach QEMU with
// Serve.
func New(cfg Config) (*Network, error) {
	if cfg.Policy == nil {
		return nil, errors.New("usernet: a policy is required")
	}
	if cfg.ResolvConf == "" {
		cfg.ResolvConf = "/etc/resolv.conf"
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Dial == nil {
		d := &net.Dialer{}
		cfg.Dial = d.DialContext
	}
	n := &Network{cfg: cfg, log: cfg.Log, names: newNameTable(NamesPrefix), resolver: newResolver(cfg.ResolvConf),
		conns: make(slots, maxConns), sniffing: make(slots, maxSniffing), lookups: make(slots, maxLookups),
		records: newRecordLimiter(), udpSeen: map[netip.AddrPort]time.Time{}}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	n.policy.Store(cfg.Policy)

	link, err := newQEMULink(gatewayMAC, tcpip.AddrFrom4(GatewayIP.As4()))
	if err != nil {
		return nil, fmt.Errorf("usernet: link: %w", err)
	}
	n.link = link

	// No ICMP transport and no IPv6: such packets are dropped.
	s := stack.New(stack.Options{
		NetworkProtocols:   []stack.NetworkProtocolFactory{ipv4.NewProtocol, arp.NewProtocol},
		TransportProtocols: []stack.TransportProtocolFactory{tcp.NewProtocol, udp.NewProtocol},
	})
	n.stack = s
	if err := s.CreateNIC(nicID, ethernet.New(link.ch)); err != nil {
		return nil, fmt.Errorf("usernet: nic: %s", err)
	}
	if err := s.AddProtocolAddress(nicID, tcpip.ProtocolAddress{
		Protocol:          ipv4.ProtocolNumber,
		AddressWithPrefix: tcpip.AddrFrom4(GatewayIP.As4()).WithPrefix(),
	}, stack.AddressProperties{}); err != nil {
		return nil, fmt.Errorf("usernet: address: %s", err)
	}
	// Promiscuous and spoofing: the stack takes packets for every
	// destination and answers as that destination.
	s.SetSpoofing(nicID, true)
	s.SetPromiscuousMode(nicID, true)
	subnet, _ := tcpip.NewSubnet(tcpip.AddrFrom4(Subnet.Addr().As4()), tcpip.MaskFromBytes(net.CIDRMask(Subnet.Bits(), 32)))
	s.SetRouteTable([]tcpip.Route{{Destination: subnet, NIC: nicID}})
	sack := tcpip.TCPSACKEnabled(true)
	s.SetTransportProtocolOption(tcp.ProtocolNumber, &sack)
	moderate := tcpip.TCPModerateReceiveBufferOption(true)
	s.SetTransportProtocolOption(tcp.ProtocolNumber, &moderate)

	s.SetTransportProtocolHandler(tcp.ProtocolNumber, tcp.NewForwarder(s, 0, 1024, n.forwardTCP).HandlePacket)
	s.SetTransportProtocolHandler(udp.ProtocolNumber, udp.NewForwarder(s, n.dropUDP).HandlePacket)
	if err := n.startDNS(); err != nil {
		n.Close()
		return nil, err
	}
	go link.transmit(n.ctx) // the only writer to the VM's connection; ends with Close
	go n.reportSuppressed()
	return n, nil
}

func (n *Network) startDNS() error {
	gw := tcpip.FullAddress{NIC: nicID, Addr: tcpip.AddrFrom4(GatewayIP.As4()), Port: 53}
	pc, err := gonet.DialUDP(n.stack, &gw, nil, ipv4.ProtocolNumber)
	if err != nil {
		return fmt.Errorf("usernet: dns udp: %w", err)
	}
	l, err := gonet.ListenTCP(n.stack, gw, ipv4.ProtocolNumber)
	if err != nil {
		pc.Close()
		return fmt.Errorf("usernet: dns tcp: %w", err)
	}
	n.dns = []*dns.Server{{PacketConn: pc, Handler: n}, {Listener: l, Handler: n}}
	for _, srv := range n.dns {
		go srv.ActivateAndServe()
	}
	return nil
}

// SetPolicy replaces the policy: new connections and lookups obey it at
// once; open connections finish under the old one.
func (n *Network) SetPolicy(m *netpolicy.Matcher) { n.policy.Store(m) }

// Policy returns the policy in force.
func (n *Network) Policy() *netpolicy.Matcher { return n.policy.Load() }

func (n *Network) matcher() *netpolicy.Matcher { return n.policy.Load() }

// record passes r to Config.Record, within the log's rate (limits.go).
func (n *Network) record(r netpolicy.Record) {
	if n.cfg.Record == nil {
		return
	}
	for _, x := range n.records.Pass(r) {
		n.cfg.Record(x)
	}
}

// reportSuppressed writes the count of suppressed records when the guest
// goes quiet, so a flood's end is in the log too.
func (n *Network) reportSuppressed() {
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-t.C:
			if r, ok := n.records.Flush(); ok && n.cfg.Record != nil {
				n.cfg.Record(r)
			}
		}
	}
}

// Serve attaches each connection accepted on l (QEMU's "-netdev stream"
// client) to the network in turn, until l is closed.
func (n *Network) Serve(l net.Listener) error {
	for {
		c, err := l.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		go func() {
			switch err := n.link.attach(n.ctx, c); {
			case n.ctx.Err() != nil, err == nil, errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
			default:
				n.log.Warn("network link to qemu closed", "err", err)
			}
		}()
	}
}

// Close stops the resolver and the stack.
func (n *Network) Close() {
	n.cancel()
	for _, srv := range n.dns {
		srv.Shutdown()
	}
	n.stack.Close()
}
