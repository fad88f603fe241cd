package usernet

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/link/channel"
	"gvisor.dev/gvisor/pkg/tcpip/link/ethernet"
	"gvisor.dev/gvisor/pkg/tcpip/network/arp"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"

	"github.com/paddock-dev/paddock/internal/netpolicy"
)

// testNet is a Network with a guest of its own: a second gVisor stack
// framed onto the Network's socket as QEMU would be, so tests drive the
// real forwarders, resolver and policy in process. Host-side dials go to
// a loopback listener whatever address the policy let through.
type testNet struct {
	n       *Network
	guest   *stack.Stack
	records chan netpolicy.Record
	host    net.Listener // every allowed dial reaches it
	dialled atomic.Int64
}

func newTestNet(t *testing.T, p netpolicy.Policy, opts ...func(*Config)) *testNet {
	t.Helper()
	m, err := netpolicy.Compile(p)
	if err != nil {
		t.Fatal(err)
	}
	tn := &testNet{records: make(chan netpolicy.Record, 100_000)}
	tn.host, err = net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tn.host.Close() })
	resolv := filepath.Join(t.TempDir(), "resolv.conf")
	os.WriteFile(resolv, []byte("nameserver 127.0.0.1\n"), 0o644)
	cfg := Config{
		Policy: m, ResolvConf: resolv,
		Record: func(r netpolicy.Record) {
			select {
			case tn.records <- r:
			default:
			}
		},
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			tn.dialled.Add(1)
			var d net.Dialer
			return d.DialContext(ctx, network, tn.host.Addr().String())
		},
	}
	for _, o := range opts {
		o(&cfg)
	}
	tn.n, err = New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(t.TempDir(), "net.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	go tn.n.Serve(l)
	t.Cleanup(func() { l.Close(); tn.n.Close() })
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	tn.guest = guestStack(t, c)
	return tn
}

// guestStack is the guest's stack, its frames carried over c.
func guestStack(t *testing.T, c net.Conn) *stack.Stack {
	ep := channel.New(4096, MTU, guestMAC)
	s := stack.New(stack.Options{
		NetworkProtocols:   []stack.NetworkProtocolFactory{ipv4.NewProtocol, arp.NewProtocol},
		TransportProtocols: []stack.TransportProtocolFactory{tcp.NewProtocol, udp.NewProtocol},
	})
	if err := s.CreateNIC(1, ethernet.New(ep)); err != nil {
		t.Fatal(err)
	}
	s.AddProtocolAddress(1, tcpip.ProtocolAddress{
		Protocol:          ipv4.ProtocolNumber,
		AddressWithPrefix: tcpip.AddrFrom4(GuestIP.As4()).WithPrefix(),
	}, stack.AddressProperties{})
	s.SetRouteTable([]tcpip.Route{{Destination: header0(), Gateway: tcpip.AddrFrom4(GatewayIP.As4()), NIC: 1}})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); c.Close(); s.Close() })
	go func() { // guest -> network
		var size [4]byte
		for {
			pkt := ep.ReadContext(ctx)
			if pkt == nil {
				return
			}
			binary.BigEndian.PutUint32(size[:], uint32(pkt.Size()))
			bufs := net.Buffers(append([][]byte{size[:]}, pkt.AsSlices()...))
			bufs.WriteTo(c)
			pkt.DecRef()
		}
	}()
	go func() { // network -> guest
		r := bufio.NewReader(c)
		var size [4]byte
		for {
			if _, err := io.ReadFull(r, size[:]); err != nil {
				return
			}
			v := buffer.NewViewSize(int(binary.BigEndian.Uint32(size[:])))
			if _, err := io.ReadFull(r, v.AsSlice()); err != nil {
				return
			}
			pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithView(v)})
			ep.InjectInbound(0, pkt)
			pkt.DecRef()
		}
	}()
	return s
}

// header0 is the default route's destination, 0.0.0.0/0.
func header0() tcpip.Subnet {
	s, _ := tcpip.NewSubnet(tcpip.AddrFrom4([4]byte{}), tcpip.MaskFrom("\x00\x00\x00\x00"))
	return s
}

// dial connects from the guest to addr:port.
func (tn *testNet) dial(ctx context.Context, addr netip.Addr, port uint16) (*gonet.TCPConn, error) {
	return gonet.DialContextTCP(ctx, tn.guest, tcpip.FullAddress{NIC: 1, Addr: tcpip.AddrFrom4(addr.As4()), Port: port}, ipv4.ProtocolNumber)
}

// lookup asks the sandbox resolver for name's A record from the guest.
func (tn *testNet) lookup(name string) (*dns.Msg, error) {
	gw := tcpip.FullAddress{NIC: 1, Addr: tcpip.AddrFrom4(GatewayIP.As4()), Port: 53}
	c, err := gonet.DialUDP(tn.guest, nil, &gw, ipv4.ProtocolNumber)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	q := new(dns.Msg)
	q.SetQuestion(dns.Fqdn(name), dns.TypeA)
	co := &dns.Conn{Conn: c}
	co.SetDeadline(time.Now().Add(10 * time.Second))
	if err := co.WriteMsg(q); err != nil {
		return nil, err
	}
	return co.ReadMsg()
}

// waitRecord returns the first record that match accepts, within 10 s.
func (tn *testNet) waitRecord(t *testing.T, match func(netpolicy.Record) bool) netpolicy.Record {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case r := <-tn.records:
			if match(r) {
				return r
			}
		case <-timeout:
			t.Fatal("no such record within 10 s")
		}
	}
}

// A connection to an allowed name on 443 must say which host it wants:
// with no SNI (a stall here) it is refused before any dial; with the
// right SNI it reaches the host.
func TestPort443NeedsAName(t *testing.T) {
	defer func(d time.Duration) { sniffTimeout = d }(sniffTimeout)
	sniffTimeout = 300 * time.Millisecond
	tn := newTestNet(t, netpolicy.Policy{Preset: netpolicy.DenyAll, Allow: []string{"api.test"}, AddHosts: map[string]string{"api.test": "203.0.113.10"}})
	addr, _ := tn.n.names.addr("api.test")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	c, err := tn.dial(ctx, addr, 443)
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte{0x16, 0x03, 0x01}) // the start of a record, never finished
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatal("a connection with no SNI was answered")
	}
	c.Close()
	r := tn.waitRecord(t, func(r netpolicy.Record) bool { return r.Name == "api.test" && r.Port == 443 })
	if r.Verdict != netpolicy.Deny || !strings.Contains(r.Rule, "no TLS SNI or HTTP Host") || tn.dialled.Load() != 0 {
		t.Fatalf("no SNI: %+v, %d dials", r, tn.dialled.Load())
	}

	c, err = tn.dial(ctx, addr, 443)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write(clientHello(t, "api.test"))
	r = tn.waitRecord(t, func(r netpolicy.Record) bool { return r.Name == "api.test" && r.Port == 443 })
	if r.Verdict != netpolicy.Allow || tn.dialled.Load() != 1 {
		t.Fatalf("the right SNI: %+v, %d dials", r, tn.dialled.Load())
	}
}

// A flood of lookups and connections from the guest: every decision is
// logged or counted as suppressed, refusals past the caps say so, and
// the supervisor's heap stays bounded.
func TestGuestFloodIsBounded(t *testing.T) {
	up := fakeUpstream(t)
	tn := newTestNet(t, netpolicy.Policy{Preset: netpolicy.DenyAll, Allow: []string{"*.flood.test:*"}, DNSUpstream: up})
	holdHostConns(t, tn)
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)

	const names, conns = 10_000, 2_000
	floodLookups(tn, names)
	open := floodConns(t, tn, conns)
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	if grown := int64(after.HeapAlloc) - int64(before.HeapAlloc); grown > 64<<20 {
		t.Errorf("the heap grew %d MiB over %d lookups and %d connections, bound 64 MiB", grown>>20, names, conns)
	}

	// Every decision: logged, or counted in a suppressed record (the
	// limiter reports once the flood stops).
	var c recordCounts
	for end := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		c.add(countRecords(tn))
		if c.suppressed > 0 && c.logged+c.suppressed >= names || time.Now().After(end) {
			break
		}
	}
	t.Logf("%d lookups, %d connections (%d open): heap +%d KiB; %d records logged (%d DNS), %d suppressed, %d refused at the cap, %d dials",
		names, conns, len(open), (int64(after.HeapAlloc)-int64(before.HeapAlloc))>>10, c.logged, c.dns, c.suppressed, c.capRefusals, tn.dialled.Load())
	if c.dns == 0 || c.suppressed == 0 {
		t.Errorf("%d DNS records logged, %d suppressed: want both (a flood past the log's rate)", c.dns, c.suppressed)
	}
	if c.logged+c.suppressed < names {
		t.Errorf("%d logged + %d suppressed, fewer than the %d lookups", c.logged, c.suppressed, names)
	}
	if len(open) > maxConns || len(open) < maxConns/2 {
		t.Errorf("%d of %d connections open at once, cap %d", len(open), conns, maxConns)
	}
	if held := tn.dialled.Load(); held > maxConns {
		t.Errorf("%d host-side dials for one sandbox, cap %d", held, maxConns)
	}
}

// holdHostConns accepts and holds every connection on the host side, until
// the test ends.
func holdHostConns(t *testing.T, tn *testNet) {
	held := make(chan net.Conn, 4096)
	go func() {
		for {
			c, err := tn.host.Accept()
			if err != nil {
				return
			}
			held <- c
		}
	}()
	t.Cleanup(func() {
		close(held)
		for c := range held {
			c.Close()
		}
	})
}

// floodLookups looks up n names at once, 64 at a time.
func floodLookups(tn *testNet, n int) {
	var wg sync.WaitGroup
	work := make(chan int)
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				tn.lookup(fmt.Sprintf("n%d.flood.test", i))
			}
		}()
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
}

// floodConns opens n connections to one allowed name and returns those
// that opened; they are closed when the test ends.
func floodConns(t *testing.T, tn *testNet, n int) []*gonet.TCPConn {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	addr, _ := tn.n.names.addr("c.flood.test")
	var open []*gonet.TCPConn
	for range n {
		c, err := tn.dial(ctx, addr, 8080)
		if err == nil {
			open = append(open, c)
		}
	}
	t.Cleanup(func() {
		for _, c := range open {
			c.Close()
		}
	})
	return open
}

// recordCounts counts the decision records a flood left.
type recordCounts struct{ logged, suppressed, dns, capRefusals int }

func (c *recordCounts) add(d recordCounts) {
	c.logged += d.logged
	c.suppressed += d.suppressed
	c.dns += d.dns
	c.capRefusals += d.capRefusals
}

func countRecords(tn *testNet) recordCounts {
	var c recordCounts
	for {
		select {
		case r := <-tn.records:
			switch {
			case r.Event == "suppressed":
				var k int
				fmt.Sscanf(r.Rule, "%d", &k)
				c.suppressed += k
			case r.Event == "dns":
				c.dns++
				c.logged++
			default:
				c.logged++
				if strings.Contains(r.Rule, "too many connections") {
					c.capRefusals++
				}
			}
		default:
			return c
		}
	}
}

// fakeUpstream answers every A query with 203.0.113.20, on loopback.
func fakeUpstream(t *testing.T) string {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.IPv4(203, 0, 113, 20)})
		w.WriteMsg(m)
	})}
	go srv.ActivateAndServe()
	t.Cleanup(func() { srv.Shutdown() })
	return pc.LocalAddr().String()
}
