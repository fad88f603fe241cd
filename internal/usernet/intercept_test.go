package usernet

import (
	"bufio"
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/paddock-dev/paddock/internal/netpolicy"
)

// fakeInterceptor takes the connections to its names on 443: it dials the
// allowed address (to show the dial it is given works), answers
// "intercepted" and reports the call.
type fakeInterceptor struct {
	names map[string]bool
	calls chan interceptCall
}

type interceptCall struct {
	name    string
	port    uint16
	head    []byte
	dialErr error
}

func (f *fakeInterceptor) Intercepts(name string, port uint16) bool {
	return f.names[name] && port == 443
}

func (f *fakeInterceptor) Serve(ctx context.Context, guest net.Conn, head []byte, name string, port uint16, dial func(context.Context) (net.Conn, error)) (int64, int64) {
	up, err := dial(ctx)
	if err == nil {
		up.Close()
	}
	k, _ := guest.Write([]byte("intercepted\n"))
	guest.Close()
	f.calls <- interceptCall{name, port, head, err}
	return int64(len(head)), int64(k)
}

// A connection to a name the interceptor wants goes to it, after the
// policy and SNI checks, with a working dial and its byte counts in the
// close record; a connection to another name is relayed as before.
func TestInterceptedAndRelayed(t *testing.T) {
	ic := &fakeInterceptor{names: map[string]bool{"secret.test": true}, calls: make(chan interceptCall, 4)}
	tn := newTestNet(t, netpolicy.Policy{Preset: netpolicy.DenyAll, Allow: []string{"secret.test", "plain.test"},
		AddHosts: map[string]string{"secret.test": "203.0.113.10", "plain.test": "203.0.113.11"}},
		func(c *Config) { c.Intercept = ic })
	go func() { // the host side of relayed connections
		for {
			c, err := tn.host.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("relayed\n"))
			c.Close()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	exchange := func(name string) string {
		t.Helper()
		addr, _ := tn.n.names.addr(name)
		c, err := tn.dial(ctx, addr, 443)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(20 * time.Second))
		c.Write(clientHello(t, name))
		line, _ := bufio.NewReader(c).ReadString('\n')
		return line
	}

	if got := exchange("secret.test"); got != "intercepted\n" {
		t.Fatalf("secret.test answered %q", got)
	}
	call := <-ic.calls
	if call.name != "secret.test" || call.port != 443 || len(call.head) == 0 || call.head[0] != 0x16 || call.dialErr != nil {
		t.Fatalf("Serve called with %s:%d, head %d bytes, dial error %v", call.name, call.port, len(call.head), call.dialErr)
	}
	r := tn.waitRecord(t, func(r netpolicy.Record) bool { return r.Name == "secret.test" && r.Event == "close" })
	if r.Sent != int64(len(call.head)) || r.Received != int64(len("intercepted\n")) {
		t.Fatalf("close record %+v", r)
	}

	if got := exchange("plain.test"); got != "relayed\n" {
		t.Fatalf("plain.test answered %q", got)
	}
	select {
	case call := <-ic.calls:
		t.Fatalf("the interceptor served %s", call.name)
	default:
	}
	r = tn.waitRecord(t, func(r netpolicy.Record) bool { return r.Name == "plain.test" && r.Event == "connect" })
	if r.Verdict != netpolicy.Allow || !strings.Contains(r.Rule, "plain.test") {
		t.Fatalf("connect record %+v", r)
	}
}
