package inject

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/paddock-dev/paddock/internal/netpolicy"
	"github.com/paddock-dev/paddock/internal/secret"
	"github.com/paddock-dev/paddock/internal/store"
)

// fakeSecrets is a sandbox's bound secrets, with values a test may change.
type fakeSecrets struct {
	mu       sync.Mutex
	defs     []secret.Definition
	values   map[string]string
	errs     map[string]error
	boundErr error
}

func (f *fakeSecrets) Bound() ([]secret.Definition, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.defs, f.boundErr
}

func (f *fakeSecrets) Value(_ context.Context, name string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.errs[name]; err != nil {
		return "", err
	}
	v, ok := f.values[name]
	if !ok {
		return "", errors.New("no such secret")
	}
	return v, nil
}

func (f *fakeSecrets) set(name, value string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.values[name] = value
}

// placeholder makes a placeholder for name, as the store would.
func placeholder(name string) string {
	return secret.PlaceholderPrefix + name + "-" + hex.EncodeToString([]byte(name + "............"))[:24]
}

// def is a secret for hosts, carried in header (with format).
func def(name, header, format string, hosts ...string) secret.Definition {
	return secret.Definition{Name: name, Env: strings.ToUpper(name), Placeholder: placeholder(name),
		Targets: []secret.Target{{Hosts: hosts, Header: header, Format: format}}}
}

// seen is what the upstream saw of one request.
type seen struct {
	Method, Host, Path, Query, Proto string
	Header                           http.Header
}

// harness is a proxy between a guest-side client and an upstream HTTPS
// server (HTTP/2 and HTTP/1.1) whose certificates come from an authority
// of their own, trusted through UpstreamRoots.
type harness struct {
	t        testing.TB
	p        *Proxy
	secrets  *fakeSecrets
	guestCAs *x509.CertPool // trusts the proxy's authority
	upCAs    *x509.CertPool // trusts the upstream's
	upPEM    []byte         // the upstream's authority
	up       *httptest.Server
	upAddr   string
	release  chan struct{} // lets /stream finish

	mu      sync.Mutex
	seen    []seen
	records []netpolicy.Record
	logs    bytes.Buffer
}

func newHarness(t testing.TB, defs []secret.Definition, values map[string]string) *harness {
	t.Helper()
	h := &harness{t: t, secrets: &fakeSecrets{defs: defs, values: values, errs: map[string]error{}}, release: make(chan struct{})}
	ca, err := LoadCA(store.Home(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	upCA, err := LoadCA(store.Home(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	h.guestCAs, h.upCAs = x509.NewCertPool(), x509.NewCertPool()
	h.guestCAs.AppendCertsFromPEM(ca.CertPEM())
	h.upCAs.AppendCertsFromPEM(upCA.CertPEM())
	h.upPEM = upCA.CertPEM()

	h.up = httptest.NewUnstartedServer(http.HandlerFunc(h.upstream))
	h.up.EnableHTTP2 = true
	h.up.TLS = &tls.Config{GetCertificate: func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) { return upCA.Leaf(hello.ServerName) }}
	h.up.StartTLS()
	t.Cleanup(h.up.Close)
	h.upAddr = h.up.Listener.Addr().String()

	log := slog.New(slog.NewTextHandler(lockedWriter{&h.mu, &h.logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h.p = New(Config{CA: ca, Secrets: h.secrets, Log: log, UpstreamRoots: h.upCAs, Record: func(r netpolicy.Record) {
		h.mu.Lock()
		h.records = append(h.records, r)
		h.mu.Unlock()
	}})
	t.Cleanup(func() { close(h.release); h.assertNoValue() })
	return h
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// upstream records each request and answers it: /upload with the length
// of its body, /redirect with a redirect to /echo, /stream with a line,
// then another once released.
func (h *harness) upstream(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	h.seen = append(h.seen, seen{Method: r.Method, Host: r.Host, Path: r.URL.Path, Query: r.URL.RawQuery, Proto: r.Proto, Header: r.Header.Clone()})
	h.mu.Unlock()
	switch r.URL.Path {
	case "/upload":
		n, _ := io.Copy(io.Discard, r.Body)
		fmt.Fprint(w, n)
	case "/redirect":
		http.Redirect(w, r, "/echo", http.StatusFound)
	case "/stream":
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: first\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-h.release:
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
		io.WriteString(w, "data: second\n\n")
	default:
		w.Header().Set("Content-Length", "3")
		io.WriteString(w, "ok\n")
	}
}

// takeSeen returns the requests the upstream saw since the last call.
func (h *harness) takeSeen() []seen {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.seen
	h.seen = nil
	return s
}

// takeRecords returns the records written since the last call.
func (h *harness) takeRecords() []netpolicy.Record {
	h.mu.Lock()
	defer h.mu.Unlock()
	r := h.records
	h.records = nil
	return r
}

// assertNoValue fails if a record or a log line holds a secret's value.
func (h *harness) assertNoValue() {
	h.mu.Lock()
	defer h.mu.Unlock()
	all, _ := json.Marshal(h.records)
	all = append(all, h.logs.Bytes()...)
	h.secrets.mu.Lock()
	defer h.secrets.mu.Unlock()
	for name, v := range h.secrets.values {
		if bytes.Contains(all, []byte(v)) {
			h.t.Errorf("a record or log line holds the value of secret %s", name)
		}
	}
}

// listen returns the address of a listener whose connections the proxy
// serves as connections to host:port, as the forwarder would hand them
// over: after reading their first bytes.
func (h *harness) listen(host string, port uint16) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { l.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	h.t.Cleanup(cancel)
	p := h.p
	dial := func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", h.upAddr)
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				head := make([]byte, 16<<10)
				k, err := c.Read(head)
				if err != nil {
					c.Close()
					return
				}
				p.Serve(ctx, c, head[:k], host, port, dial)
			}()
		}
	}()
	return l.Addr().String()
}

// client is the guest: it trusts the proxy's authority and reaches every
// host through a listener served as a connection to host.
func (h *harness) client(host string, h2 bool) *http.Client {
	addr := h.listen(host, 443)
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "tcp", addr)
		},
		TLSClientConfig:   &tls.Config{RootCAs: h.guestCAs},
		ForceAttemptHTTP2: h2,
	}
	h.t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 20 * time.Second}
}

// do sends req and returns the response with its body read.
func (h *harness) do(c *http.Client, req *http.Request) (*http.Response, string) {
	h.t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	return resp, string(b)
}

func get(t testing.TB, url string, header ...string) *http.Request {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return req
}

// requestRecords returns the "request" records among rs.
func requestRecords(rs []netpolicy.Record) []netpolicy.Record {
	var out []netpolicy.Record
	for _, r := range rs {
		if r.Event == "request" {
			out = append(out, r)
		}
	}
	return out
}
