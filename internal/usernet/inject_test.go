package usernet

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/paddock-dev/paddock/internal/inject"
	"github.com/paddock-dev/paddock/internal/netpolicy"
	"github.com/paddock-dev/paddock/internal/secret"
	"github.com/paddock-dev/paddock/internal/store"
)

// boundSecrets is one secret bound to a sandbox, for inject.Proxy.
type boundSecrets struct {
	def   secret.Definition
	value string
}

func (b boundSecrets) Bound() ([]secret.Definition, error) { return []secret.Definition{b.def}, nil }

func (b boundSecrets) Value(context.Context, string) (string, error) { return b.value, nil }

// The real injector behind the forwarder: a guest's HTTPS request to a
// host its secret is for arrives upstream with the value, over the
// address the policy allowed; the connection is logged as usual and the
// request besides. On 443, and on another port a secret names.
func TestInjectorBehindForwarder(t *testing.T) {
	t.Run("443", func(t *testing.T) { injectorBehindForwarder(t, 443, "api.test") })
	t.Run("8443", func(t *testing.T) { injectorBehindForwarder(t, 8443, "api.test:8443") })
}

func injectorBehindForwarder(t *testing.T, port uint16, secretHost string) {
	const value = "sk-forwarded-VALUE"
	ca, err := inject.LoadCA(store.Home(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	upCA, err := inject.LoadCA(store.Home(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	guestRoots, upRoots := x509.NewCertPool(), x509.NewCertPool()
	guestRoots.AppendCertsFromPEM(ca.CertPEM())
	upRoots.AppendCertsFromPEM(upCA.CertPEM())
	ph := secret.PlaceholderPrefix + "t-0123456789abcdef01234567"
	var mu sync.Mutex
	var requests []netpolicy.Record
	proxy := inject.New(inject.Config{CA: ca, UpstreamRoots: upRoots,
		Secrets: boundSecrets{secret.Definition{Name: "t", Placeholder: ph, Targets: []secret.Target{{Hosts: []string{secretHost}, Header: "X-Api-Key"}}}, value},
		Record: func(r netpolicy.Record) {
			mu.Lock()
			requests = append(requests, r)
			mu.Unlock()
		}})
	tn := newTestNet(t, netpolicy.Policy{Preset: netpolicy.DenyAll, Allow: []string{secretHost}, AddHosts: map[string]string{"api.test": "203.0.113.10"}},
		func(c *Config) { c.Intercept = proxy })

	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Header.Get("X-Api-Key")) // the test's own upstream may echo it
	}))
	up.Listener.Close()
	up.Listener = tn.host
	up.EnableHTTP2 = true
	up.TLS = &tls.Config{GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return upCA.Leaf("api.test") }}
	up.StartTLS()
	t.Cleanup(up.Close)

	addr, _ := tn.n.names.addr("api.test")
	for _, h2 := range []bool{false, true} {
		tr := &http.Transport{
			DialContext:       func(ctx context.Context, _, _ string) (net.Conn, error) { return tn.dial(ctx, addr, port) },
			TLSClientConfig:   &tls.Config{RootCAs: guestRoots},
			ForceAttemptHTTP2: h2,
		}
		req, _ := http.NewRequest("GET", "https://"+secret.HostKey("api.test", port)+"/echo", nil)
		req.Header.Set("X-Api-Key", ph)
		resp, err := (&http.Client{Transport: tr, Timeout: 20 * time.Second}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		tr.CloseIdleConnections()
		if resp.StatusCode != 200 || string(body) != value || resp.ProtoMajor != map[bool]int{false: 1, true: 2}[h2] {
			t.Fatalf("h2 %v: %s %s %q", h2, resp.Proto, resp.Status, body)
		}
		r := tn.waitRecord(t, func(r netpolicy.Record) bool { return r.Name == "api.test" && r.Event == "close" })
		if r.Sent == 0 || r.Received == 0 || r.Verdict != netpolicy.Allow {
			t.Fatalf("close record %+v", r)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(requests) != 2 || requests[0].Event != "request" || requests[0].Rule != "secret t injected" ||
		requests[0].Dest != net.JoinHostPort(addr.String(), strconv.Itoa(int(port))) || requests[0].Status != 200 {
		t.Fatalf("request records %+v", requests)
	}
	if tn.dialled.Load() != 2 {
		t.Fatalf("%d host-side dials, want one per guest connection", tn.dialled.Load())
	}
}
