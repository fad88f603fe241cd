package inject

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/http/httputil"
	"strconv"
	"sync"
	"time"

	"github.com/paddock-dev/paddock/internal/secret"
)

// session is one guest connection's side of the proxy: the host it is
// for, and the transport its requests go out through, which keeps its
// upstream connections for the guest connection's next requests (and only
// for them: each guest connection dials the addresses the policy allowed
// it).
//
// The first upstream connection is opened while the guest's handshake
// runs: dialled at once, its TLS handshake begun as soon as the guest's
// ClientHello says which protocols it speaks (decide). An HTTP/2 guest
// gets HTTP/2 upstream where the host speaks it; an HTTP/1.1 guest
// HTTP/1.1, so that its Upgrade requests (WebSocket) work.
//
// Invariants: decided is closed once, when protos is set, and protos is
// not changed after. mu guards taken: the connection dialled ahead is
// handed to the transport's first dial, or closed when the session ends.
type session struct {
	p         *Proxy
	name      string
	port      uint16
	key       string // name and port as secrets name them (secret.HostKey)
	secure    bool   // TLS from the guest, TLS upstream; else plain HTTP both ways
	proto     string // "https" or "http", for records
	dest      string // what the guest addressed
	authority string // name, with the port unless it is the scheme's
	dial      func(context.Context) (net.Conn, error)
	transport *http.Transport
	proxy     *httputil.ReverseProxy

	decideOnce sync.Once
	decided    chan struct{}
	protos     []string      // the upstream's ALPN offer
	ended      chan struct{} // closed when the session ends

	mu    sync.Mutex
	ahead chan dialled // the connection opened while the guest's handshake runs
	taken bool
}

type dialled struct {
	conn net.Conn
	err  error
	at   time.Time
}

// aheadFresh is how long a connection dialled ahead stays usable: a
// server may drop a connection that sends nothing for long.
const aheadFresh = 5 * time.Second

type sessionKey struct{}

func (p *Proxy) newSession(ctx context.Context, name string, port uint16, secure bool, dial func(context.Context) (net.Conn, error), dest net.Addr) *session {
	s := &session{p: p, name: name, port: port, key: secret.HostKey(name, port), secure: secure, dial: dial, proto: "http", authority: name,
		decided: make(chan struct{}), ended: make(chan struct{}), ahead: make(chan dialled, 1)}
	if dest != nil {
		s.dest = dest.String()
	}
	if secure && port != 443 || !secure && port != 80 {
		s.authority = net.JoinHostPort(name, strconv.Itoa(int(port)))
	}
	s.transport = &http.Transport{
		ForceAttemptHTTP2:     true,
		DisableCompression:    true, // bodies pass as they are
		MaxIdleConnsPerHost:   upstreamIdleKept,
		IdleConnTimeout:       upstreamIdle,
		ExpectContinueTimeout: time.Second,
	}
	if secure {
		s.proto = "https"
		s.transport.DialTLSContext = s.dialTLS
	} else {
		s.transport.DialContext = s.dialPlain
	}
	s.proxy = &httputil.ReverseProxy{
		Rewrite:        s.rewrite,
		Transport:      s.transport,
		FlushInterval:  -1, // stream: every write reaches the guest at once
		ErrorLog:       p.http.ErrorLog,
		ErrorHandler:   s.upstreamError,
		ModifyResponse: s.response,
		BufferPool:     copyBuffers,
	}
	go s.dialAhead(ctx)
	return s
}

// decide sets the protocols offered upstream from those the guest offers
// (its ClientHello), which lets the connection dialled ahead start TLS.
func (s *session) decide(guest []string) {
	s.decideOnce.Do(func() {
		s.protos = []string{"http/1.1"}
		for _, p := range guest {
			if p == "h2" {
				s.protos = []string{"h2", "http/1.1"}
			}
		}
		close(s.decided)
	})
}

// dialAhead opens the first upstream connection, over TLS once the
// guest's protocols are known, and leaves it in ahead.
func (s *session) dialAhead(ctx context.Context) {
	c, err := s.dial(ctx)
	if err == nil && s.secure {
		select {
		case <-s.decided:
			c, err = s.handshake(ctx, c)
		case <-s.ended:
			c.Close()
			c, err = nil, net.ErrClosed
		}
	}
	s.ahead <- dialled{c, err, time.Now()}
}

// handshake starts TLS on c as a client of the session's host, verifying
// it against the proxy's roots.
func (s *session) handshake(ctx context.Context, c net.Conn) (net.Conn, error) {
	tc := tls.Client(c, &tls.Config{
		ServerName:         s.name,
		RootCAs:            s.p.roots(),
		ClientSessionCache: s.p.clientSessions,
		NextProtos:         s.protos,
		MinVersion:         tls.VersionTLS12,
	})
	ctx, cancel := context.WithTimeout(ctx, upstreamTLS)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		c.Close()
		return nil, err
	}
	return tc, nil
}

// takeAhead returns the connection dialled ahead the first time it is
// called, if it is there and fresh; nil after.
func (s *session) takeAhead(ctx context.Context) (net.Conn, error) {
	s.mu.Lock()
	first := !s.taken
	s.taken = true
	s.mu.Unlock()
	if !first {
		return nil, nil
	}
	select {
	case d := <-s.ahead:
		if d.err == nil && time.Since(d.at) < aheadFresh {
			return d.conn, nil
		}
		if d.conn != nil {
			d.conn.Close()
		}
		return nil, nil
	case <-ctx.Done():
		go s.closeAhead()
		return nil, ctx.Err()
	}
}

// dialTLS is the transport's dial for HTTPS: the connection dialled
// ahead, then new ones.
func (s *session) dialTLS(ctx context.Context, _, _ string) (net.Conn, error) {
	if c, err := s.takeAhead(ctx); c != nil || err != nil {
		return c, err
	}
	select {
	case <-s.decided:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	c, err := s.dial(ctx)
	if err != nil {
		return nil, err
	}
	return s.handshake(ctx, c)
}

// dialPlain is the transport's dial for plain HTTP.
func (s *session) dialPlain(ctx context.Context, _, _ string) (net.Conn, error) {
	if c, err := s.takeAhead(ctx); c != nil || err != nil {
		return c, err
	}
	return s.dial(ctx)
}

// close ends the session: upstream connections and one dialled ahead and
// never used are closed.
func (s *session) close() {
	close(s.ended)
	s.transport.CloseIdleConnections()
	s.mu.Lock()
	first := !s.taken
	s.taken = true
	s.mu.Unlock()
	if first {
		go s.closeAhead()
	}
}

// afterRequest closes the upstream connections a request left idle when
// the session ended while it ran (an HTTP/2 guest's streams outlive its
// connection's end by a little).
func (s *session) afterRequest() {
	select {
	case <-s.ended:
		s.transport.CloseIdleConnections()
	default:
	}
}

func (s *session) closeAhead() {
	if d := <-s.ahead; d.conn != nil {
		d.conn.Close()
	}
}

// rewrite points the outgoing request at the session's host; the guest's
// Host (or :authority) is kept, and so are the forwarding headers it sent,
// which ReverseProxy drops before calling it.
func (s *session) rewrite(pr *httputil.ProxyRequest) {
	pr.Out.URL.Scheme = s.proto
	pr.Out.URL.Host = s.authority
	for _, k := range forwardingHeaders {
		if v, ok := pr.In.Header[k]; ok {
			pr.Out.Header[k] = v
		}
	}
}

var forwardingHeaders = []string{"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto"}

// copyBuffers are the buffers responses are copied through, shared by
// every session.
var copyBuffers = &bufferPool{}

// bufferPool is an httputil.BufferPool of 32 KiB buffers.
type bufferPool struct{ pool sync.Pool }

func (b *bufferPool) Get() []byte {
	if v, ok := b.pool.Get().(*[]byte); ok {
		return *v
	}
	return make([]byte, 32<<10)
}

func (b *bufferPool) Put(buf []byte) { b.pool.Put(&buf) }
