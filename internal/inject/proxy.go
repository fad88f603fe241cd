package inject

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/paddock-dev/paddock/internal/netpolicy"
	"github.com/paddock-dev/paddock/internal/secret"
)

// UpstreamCAEnv names a PEM file of certificates the proxy trusts for
// upstream hosts besides the system's roots (tests use it for their own
// servers).
const UpstreamCAEnv = "PADDOCK_UPSTREAM_CA"

// boundTTL is how long the bound definitions are reused before Secrets is
// asked again: a secret bound, unbound or redefined counts within it.
const boundTTL = time.Second

// Timeouts of an intercepted connection. A guest connection idle for
// guestIdle between requests is closed, as a server would; a guest that
// has not finished its handshake or a request's head within guestHead is
// dropped.
const (
	guestIdle        = 5 * time.Minute
	guestHead        = 30 * time.Second
	upstreamTLS      = 10 * time.Second // an upstream's TLS handshake
	upstreamIdle     = 90 * time.Second
	upstreamIdleKept = 16 // idle upstream connections kept per guest connection
)

// recordRate and recordBurst bound the request records of one proxy, as
// usernet bounds its own: past them records are counted and reported.
const (
	recordRate  = 200
	recordBurst = 1000
)

// Secrets is the secret store as one sandbox's proxy sees it.
type Secrets interface {
	// Bound returns the definitions of the secrets bound to the sandbox,
	// as they are now.
	Bound() ([]secret.Definition, error)
	// Value returns the value of secret name. Its error never holds the
	// value.
	Value(ctx context.Context, name string) (string, error)
}

// Config configures a Proxy.
type Config struct {
	// CA signs the certificates shown to the guest.
	CA *CA
	// Secrets are the sandbox's bound secrets.
	Secrets Secrets
	// Record receives one record per request read (see netpolicy.Record);
	// it must not block for long. Records are rate-limited as usernet's
	// are. Nil discards them.
	Record func(netpolicy.Record)
	Log    *slog.Logger
	// UpstreamRoots verify upstream hosts; nil: the system's roots and
	// the certificates in the file named by $PADDOCK_UPSTREAM_CA.
	UpstreamRoots *x509.CertPool
}

// Proxy puts a sandbox's secrets into the requests of the guest
// connections the network forwarder hands it (Serve), for the hosts the
// secrets are for (Intercepts).
//
// Invariants: bound holds the last index of the bound secrets, replaced
// whole under refreshMu and read without a lock. serverTLS and
// clientSessions are shared by every connection and never changed.
type Proxy struct {
	cfg            Config
	log            *slog.Logger
	roots          func() *x509.CertPool // loaded at the first upstream handshake
	serverTLS      *tls.Config
	clientSessions tls.ClientSessionCache
	http           *http.Server // serves every guest connection, one Serve each
	records        *netpolicy.RecordLimiter

	bound     atomic.Pointer[index]
	refreshMu sync.Mutex

	now func() time.Time // for tests
}

// New returns a proxy for one sandbox.
func New(cfg Config) *Proxy {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	p := &Proxy{cfg: cfg, log: cfg.Log,
		clientSessions: tls.NewLRUClientSessionCache(256),
		records:        netpolicy.NewRecordLimiter(recordRate, recordBurst), now: time.Now}
	// The system's roots take tens of milliseconds to parse: a sandbox
	// that never has a request intercepted never reads them.
	p.roots = sync.OnceValue(func() *x509.CertPool {
		if cfg.UpstreamRoots != nil {
			return cfg.UpstreamRoots
		}
		pool, err := upstreamRoots(os.Getenv(UpstreamCAEnv))
		if err != nil {
			p.log.Error("upstream certificate authorities", "err", err)
		}
		return pool
	})
	// One ticket key for every connection, so that a guest resumes its
	// TLS sessions across connections.
	var key [32]byte
	rand.Read(key[:])
	// The guest's side never leaves the host, so its key exchange is
	// X25519, the cheapest, rather than a post-quantum hybrid.
	p.serverTLS = &tls.Config{MinVersion: tls.VersionTLS12, NextProtos: []string{"h2", "http/1.1"},
		CurvePreferences: []tls.CurveID{tls.X25519, tls.CurveP256}}
	p.serverTLS.SetSessionTicketKeys([][32]byte{key})
	errLog := slog.NewLogLogger(p.log.Handler(), slog.LevelDebug)
	p.http = &http.Server{
		Handler:           http.HandlerFunc(serveRequest),
		ReadHeaderTimeout: guestHead,
		IdleTimeout:       guestIdle,
		ErrorLog:          errLog,
		BaseContext:       func(l net.Listener) context.Context { return l.(*oneConn).ctx },
	}
	return p
}

// upstreamRoots returns the system's roots plus the certificates in file,
// if named.
func upstreamRoots(file string) (*x509.CertPool, error) {
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if file == "" {
		return pool, nil
	}
	pem, err := os.ReadFile(file)
	if err != nil {
		return pool, fmt.Errorf("%s: %w", UpstreamCAEnv, err)
	}
	if !pool.AppendCertsFromPEM(pem) {
		return pool, fmt.Errorf("%s: %s holds no PEM certificate", UpstreamCAEnv, file)
	}
	return pool, nil
}

// Intercepts reports whether the connection to name (a lower-case host
// name, as the forwarder's policy allowed it) on port is for the proxy:
// when a bound secret is for name on that port (443 unless the secret's
// host names another: secret.HostKey); on 80, when any secret is bound
// (plain HTTP is read only to refuse placeholders). It is cheap: the
// bound secrets are read at most once a second.
func (p *Proxy) Intercepts(name string, port uint16) bool {
	if port == 80 {
		return len(p.index().placeholders) > 0
	}
	return len(p.index().forHost(secret.HostKey(name, port))) > 0
}

// Serve serves one guest connection to name:port, whose first bytes, head,
// the forwarder has read already, and closes it. A TLS connection to the
// host and port a bound secret is for is answered with a certificate from
// the CA, and its HTTP requests (HTTP/1.1 or HTTP/2) are read, checked,
// given their secrets and sent on over TLS connections that dial opens
// (verified as any client would, SNI name). Any other TLS connection is
// relayed unread. A plain connection is read as HTTP and sent on as is,
// but a request that carries a placeholder is refused. It returns the
// bytes read from the guest and written to it.
func (p *Proxy) Serve(ctx context.Context, guest net.Conn, head []byte, name string, port uint16, dial func(ctx context.Context) (net.Conn, error)) (sent, received int64) {
	gc := newGuestConn(guest, head)
	defer p.flushRecords()
	if len(head) == 0 {
		// The forwarder always has the first bytes; a caller that has
		// not, has them read here.
		b := make([]byte, 1)
		if k, err := guest.Read(b); err != nil || k == 0 {
			gc.Close()
			return gc.counts()
		}
		gc.head = b
		gc.sent.Add(1)
	}
	stop := context.AfterFunc(ctx, func() { gc.Close() })
	defer stop()
	secure := gc.head[0] == 0x16
	if secure && len(p.index().forHost(secret.HostKey(name, port))) == 0 {
		relay(ctx, gc, dial)
		return gc.counts()
	}
	var leaf *tls.Certificate
	if secure {
		var err error
		if leaf, err = p.cfg.CA.Leaf(name); err != nil {
			p.log.Error("make a certificate", "host", name, "err", err)
			gc.Close()
			return gc.counts()
		}
	}
	s := p.newSession(ctx, name, port, secure, dial, guest.LocalAddr())
	defer s.close()
	var conn net.Conn = gc
	if secure {
		cfg := p.serverTLS.Clone()
		cfg.Certificates = []tls.Certificate{*leaf}
		cfg.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
			s.decide(hello.SupportedProtos)
			return nil, nil
		}
		conn = tls.Server(gc, cfg)
	}
	l := &oneConn{conn: conn, done: gc.closed, stop: make(chan struct{})}
	l.ctx = context.WithValue(ctx, sessionKey{}, s)
	p.http.Serve(l)
	if !l.accepted { // the server was closed before it took the connection
		gc.Close()
	}
	<-gc.closed
	return gc.counts()
}

// index is what the proxy knows of the bound secrets at one time.
type index struct {
	at           time.Time
	placeholders map[string]*secret.Definition   // by placeholder
	hosts        map[string][]*secret.Definition // the secrets for each host pattern (secret.HostMatches)
	wildcards    []string                        // the patterns of hosts that are wildcards, most specific first
}

func newIndex(defs []secret.Definition, at time.Time) *index {
	ix := &index{at: at, placeholders: map[string]*secret.Definition{}, hosts: map[string][]*secret.Definition{}}
	defs = slices.Clone(defs)
	slices.SortFunc(defs, func(a, b secret.Definition) int { return strings.Compare(a.Name, b.Name) })
	for i := range defs {
		d := &defs[i]
		if d.Placeholder != "" {
			ix.placeholders[d.Placeholder] = d
		}
		for _, h := range d.Hosts() {
			if strings.HasPrefix(h, "*") && len(ix.hosts[h]) == 0 {
				ix.wildcards = append(ix.wildcards, h)
			}
			ix.hosts[h] = append(ix.hosts[h], d)
		}
	}
	slices.SortStableFunc(ix.wildcards, func(a, b string) int { return secret.Specificity(b) - secret.Specificity(a) })
	return ix
}

// forHost returns the secrets for key (secret.HostKey): those for that
// very name if any, else those of the most specific wildcard that matches
// it; the sets of several patterns are never merged.
func (ix *index) forHost(key string) []*secret.Definition {
	if defs := ix.hosts[key]; len(defs) > 0 {
		return defs
	}
	for _, w := range ix.wildcards {
		if secret.HostMatches(w, key) {
			return ix.hosts[w]
		}
	}
	return nil
}

// Rebound makes the next request ask Secrets again, whatever the age of
// the last answer: the sandbox's bound list changed.
func (p *Proxy) Rebound() { p.bound.Store(nil) }

// index returns the bound secrets, asking Secrets again when the last
// answer is older than boundTTL. When Secrets fails, the last answer
// stays (none at first) and the failure is logged.
func (p *Proxy) index() *index {
	now := p.now()
	if ix := p.bound.Load(); ix != nil && now.Sub(ix.at) < boundTTL {
		return ix
	}
	p.refreshMu.Lock()
	defer p.refreshMu.Unlock()
	ix := p.bound.Load()
	if ix != nil && now.Sub(ix.at) < boundTTL {
		return ix
	}
	defs, err := p.cfg.Secrets.Bound()
	if err != nil {
		p.log.Warn("read the sandbox's secrets; the last known stay in force", "err", err)
		if ix == nil {
			ix = newIndex(nil, now)
		} else {
			again := *ix
			again.at = now
			ix = &again
		}
	} else {
		ix = newIndex(defs, now)
	}
	p.bound.Store(ix)
	return ix
}

// record writes r within the proxy's rate.
func (p *Proxy) record(r netpolicy.Record) {
	if p.cfg.Record == nil {
		return
	}
	for _, x := range p.records.Pass(r) {
		p.cfg.Record(x)
	}
}

func (p *Proxy) flushRecords() {
	if r, ok := p.records.Flush(); ok && p.cfg.Record != nil {
		p.cfg.Record(r)
	}
}
