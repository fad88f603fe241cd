package usernet

import (
	"net"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/paddock-dev/paddock/internal/netpolicy"
)

// The start of any guest connection is read for a name without panicking,
// and a name found is a prefix's own: more bytes never change it.
func FuzzSniffName(f *testing.F) {
	f.Add([]byte("GET / HTTP/1.1\r\nHost: a.test\r\n\r\n"))
	f.Add(clientHello(&testing.T{}, "api.test"))
	f.Add([]byte{0x16, 3, 1, 0, 4, 1, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		name, err := sniffName(b)
		if err == nil && name != "" {
			if again, err := sniffName(append(b, "more bytes\r\n"...)); err != nil || again != name {
				t.Fatalf("%q then, with more bytes, %q %v", name, again, err)
			}
		}
	})
}

// Any DNS message the guest sends gets an answer or none, never a panic,
// and names outside the policy are never looked up.
func FuzzServeDNS(f *testing.F) {
	q := new(dns.Msg)
	q.SetQuestion("a.test.", dns.TypeA)
	wire, _ := q.Pack()
	f.Add(wire)
	q.SetQuestion("x.evil.test.", dns.TypeANY)
	wire, _ = q.Pack()
	f.Add(wire)
	m, err := netpolicy.Compile(netpolicy.Policy{Preset: netpolicy.DenyAll, Allow: []string{"a.test"}, AddHosts: map[string]string{"a.test": "203.0.113.1"}})
	if err != nil {
		f.Fatal(err)
	}
	n, err := New(Config{Policy: m, ResolvConf: "/nonexistent"})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(n.Close)
	f.Fuzz(func(t *testing.T, b []byte) {
		req := new(dns.Msg)
		if req.Unpack(b) != nil {
			return
		}
		n.ServeDNS(&recorder{}, req)
	})
}

// recorder is a dns.ResponseWriter that keeps nothing.
type recorder struct{}

func (*recorder) LocalAddr() net.Addr         { return &net.UDPAddr{} }
func (*recorder) RemoteAddr() net.Addr        { return &net.UDPAddr{} }
func (*recorder) WriteMsg(m *dns.Msg) error   { _, err := m.Pack(); return err }
func (*recorder) Write(b []byte) (int, error) { return len(b), nil }
func (*recorder) Close() error                { return nil }
func (*recorder) TsigStatus() error           { return nil }
func (*recorder) TsigTimersOnly(bool)         {}
func (*recorder) Hijack()                     {}

// Any byte stream on QEMU's network socket is framed, dropped or ends the
// link; the network goes on serving the next connection.
func FuzzLinkFrames(f *testing.F) {
	f.Add(arpRequest(GatewayIP))
	f.Add([]byte{0, 0, 0, 1, 0})
	f.Add(append(framed(make([]byte, 60)), 0xff, 0xff, 0xff, 0xff))
	n, err := New(Config{Policy: mustPolicy(f), ResolvConf: "/nonexistent"})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(n.Close)
	f.Fuzz(func(t *testing.T, b []byte) {
		host, vm := net.Pipe()
		done := make(chan error, 1)
		go func() { done <- n.link.attach(n.ctx, host) }()
		go func() {
			vm.Write(b)
			vm.Close()
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("the link did not end when the stream did")
		}
	})
}

func mustPolicy(f *testing.F) *netpolicy.Matcher {
	m, err := netpolicy.Compile(netpolicy.Policy{Preset: netpolicy.DefaultPreset})
	if err != nil {
		f.Fatal(err)
	}
	return m
}
