package inject

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/paddock-dev/paddock/internal/netpolicy"
	"github.com/paddock-dev/paddock/internal/secret"
)

const (
	value      = "sk-test-VALUE-one"
	otherValue = "sk-other-VALUE"
)

// The placeholder in the secret's header is replaced by its value, over
// HTTP/1.1 and over HTTP/2 (negotiated with the guest and upstream both),
// and the request is recorded by secret name.
func TestPlaceholderReplaced(t *testing.T) {
	for _, h2 := range []bool{false, true} {
		name := map[bool]string{false: "HTTP/1.1", true: "HTTP/2"}[h2]
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, []secret.Definition{def("t", "X-Api-Key", "", "api.test")}, map[string]string{"t": value})
			c := h.client("api.test", h2)
			resp, body := h.do(c, get(t, "https://api.test/echo", "X-Api-Key", placeholder("t"), "X-Forwarded-For", "203.0.113.9"))
			if resp.StatusCode != 200 || body != "ok\n" || resp.ProtoMajor != map[bool]int{false: 1, true: 2}[h2] {
				t.Fatalf("%s %s %q", resp.Proto, resp.Status, body)
			}
			s := h.takeSeen()
			if len(s) != 1 || s[0].Header.Get("X-Api-Key") != value || s[0].Host != "api.test" || s[0].Path != "/echo" ||
				s[0].Header.Get("X-Forwarded-For") != "203.0.113.9" {
				t.Fatalf("upstream saw %+v", s)
			}
			if h2 && s[0].Proto != "HTTP/2.0" {
				t.Fatalf("upstream got %s, want HTTP/2.0", s[0].Proto)
			}
			rs := requestRecords(h.takeRecords())
			if len(rs) != 1 || rs[0].Verdict != netpolicy.Allow || rs[0].Rule != "secret t injected" || !slices.Equal(rs[0].Secrets, []string{"t"}) ||
				rs[0].Method != "GET" || rs[0].Path != "/echo" || rs[0].Status != 200 || rs[0].Name != "api.test" || rs[0].Proto != "https" || rs[0].Port != 443 {
				t.Fatalf("records %+v", rs)
			}
		})
	}
}

// A request without the secret's header gets it, in the secret's format.
func TestHeaderSetWhenAbsent(t *testing.T) {
	h := newHarness(t, []secret.Definition{def("t", "Authorization", "Bearer %s", "api.test")}, map[string]string{"t": value})
	resp, _ := h.do(h.client("api.test", true), get(t, "https://api.test/echo"))
	s := h.takeSeen()
	if resp.StatusCode != 200 || len(s) != 1 || s[0].Header.Get("Authorization") != "Bearer "+value {
		t.Fatalf("%s; upstream saw %+v", resp.Status, s)
	}
	// A header of the guest's own, without a placeholder, is left alone.
	h.do(h.client("api.test", true), get(t, "https://api.test/echo", "Authorization", "Bearer mine"))
	if s := h.takeSeen(); len(s) != 1 || s[0].Header.Get("Authorization") != "Bearer mine" {
		t.Fatalf("upstream saw %+v", s)
	}
}

// A target that overrides sets its header on every request, in place of
// the guest's own value.
func TestHeaderOverride(t *testing.T) {
	d := def("t", "X-Api-Key", "", "api.test")
	d.Targets[0].Override = true
	h := newHarness(t, []secret.Definition{d}, map[string]string{"t": value})
	c := h.client("api.test", true)
	h.do(c, get(t, "https://api.test/echo", "X-Api-Key", "mine"))
	h.do(c, get(t, "https://api.test/echo"))
	h.do(c, get(t, "https://api.test/echo", "X-Api-Key", placeholder("t")))
	s := h.takeSeen()
	if len(s) != 3 {
		t.Fatalf("upstream saw %+v", s)
	}
	for i, r := range s {
		if got := r.Header.Values("X-Api-Key"); len(got) != 1 || got[0] != value {
			t.Errorf("request %d: X-Api-Key %q", i, got)
		}
	}
}

// Basic credentials with the placeholder as password are decoded, given
// the value and encoded again; absent, they are set.
func TestBasicAuth(t *testing.T) {
	d := secret.Definition{Name: "gh", Placeholder: placeholder("gh"),
		Targets: []secret.Target{{Hosts: []string{"git.test"}, Header: "Authorization", BasicUser: "x-access-token"}}}
	h := newHarness(t, []secret.Definition{d}, map[string]string{"gh": value})
	c := h.client("git.test", false)
	req := get(t, "https://git.test/repo.git/info/refs")
	req.SetBasicAuth("x-access-token", placeholder("gh"))
	h.do(c, req)
	h.do(c, get(t, "https://git.test/repo.git/info/refs"))
	s := h.takeSeen()
	if len(s) != 2 {
		t.Fatalf("upstream saw %+v", s)
	}
	for i, r := range s {
		hr := &http.Request{Header: r.Header}
		if u, p, ok := hr.BasicAuth(); !ok || u != "x-access-token" || p != value {
			t.Errorf("request %d: basic auth %q %q %v", i, u, p, ok)
		}
	}
}

// The query string gets a value only for a secret that allows it.
func TestQueryOnlyWhenAllowed(t *testing.T) {
	q := def("q", "X-Q", "", "api.test")
	q.Query = true
	n := def("n", "X-N", "", "api.test")
	const qValue = "a+b/c=d&e"
	h := newHarness(t, []secret.Definition{q, n}, map[string]string{"q": qValue, "n": value})
	h.do(h.client("api.test", true), get(t, "https://api.test/echo?key="+placeholder("q")+"&other="+placeholder("n")))
	s := h.takeSeen()
	if len(s) != 1 {
		t.Fatalf("upstream saw %+v", s)
	}
	got, _ := url.ParseQuery(s[0].Query)
	if got.Get("key") != qValue || got.Get("other") != placeholder("n") {
		t.Fatalf("upstream query %q: key %q, other %q", s[0].Query, got.Get("key"), got.Get("other"))
	}
	if rs := requestRecords(h.takeRecords()); len(rs) != 1 || strings.Contains(rs[0].Path, "key") {
		t.Fatalf("records %+v", rs)
	}
}

// HEAD is sent as HEAD and answered without a body.
func TestHead(t *testing.T) {
	h := newHarness(t, []secret.Definition{def("t", "X-Api-Key", "", "api.test")}, map[string]string{"t": value})
	for _, h2 := range []bool{false, true} {
		req, _ := http.NewRequest("HEAD", "https://api.test/echo", nil)
		req.Header.Set("X-Api-Key", placeholder("t"))
		resp, body := h.do(h.client("api.test", h2), req)
		s := h.takeSeen()
		if resp.StatusCode != 200 || body != "" || resp.ContentLength != 3 || len(s) != 1 || s[0].Method != "HEAD" || s[0].Header.Get("X-Api-Key") != value {
			t.Fatalf("h2 %v: %s, %d bytes (length %d); upstream saw %+v", h2, resp.Status, len(body), resp.ContentLength, s)
		}
	}
}

// A redirect comes back to the guest; the request it makes next goes
// through the proxy again and gets the value again.
func TestRedirectPassedBack(t *testing.T) {
	h := newHarness(t, []secret.Definition{def("t", "X-Api-Key", "", "api.test")}, map[string]string{"t": value})
	c := h.client("api.test", true)
	var hops []string
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		hops = append(hops, req.URL.Path)
		return nil
	}
	resp, body := h.do(c, get(t, "https://api.test/redirect", "X-Api-Key", placeholder("t")))
	s := h.takeSeen()
	if resp.StatusCode != 200 || body != "ok\n" || !slices.Equal(hops, []string{"/echo"}) || len(s) != 2 || s[0].Path != "/redirect" || s[1].Path != "/echo" {
		t.Fatalf("%s %q, the guest followed %v; upstream saw %+v", resp.Status, body, hops, s)
	}
	for _, r := range s {
		if r.Header.Get("X-Api-Key") != value {
			t.Fatalf("upstream saw %s without the value", r.Path)
		}
	}
	rs := requestRecords(h.takeRecords())
	if len(rs) != 2 || rs[0].Status != http.StatusFound || rs[1].Status != 200 {
		t.Fatalf("records %+v", rs)
	}
}

// A placeholder of a secret that is not for the host, or not bound, is
// refused with 403 and recorded; the upstream sees nothing.
func TestWrongHostRefused(t *testing.T) {
	h := newHarness(t, []secret.Definition{def("t", "X-Api-Key", "", "api.test"), def("o", "X-Api-Key", "", "other.test")},
		map[string]string{"t": value, "o": otherValue})
	for _, c := range []struct{ ph, name, rule string }{
		{placeholder("o"), "o", "secret o is not for api.test"},
		{placeholder("nosuch"), "nosuch", "secret nosuch is not bound to this sandbox"},
	} {
		for _, where := range []string{"header", "basic", "query", "path"} {
			url, req := "https://api.test/echo", (*http.Request)(nil)
			switch where {
			case "query":
				url += "?k=" + c.ph
			case "path":
				url += "/" + c.ph
			}
			req = get(t, url)
			switch where {
			case "header":
				req.Header.Set("X-Other", "Bearer "+c.ph)
			case "basic":
				req.SetBasicAuth("u", c.ph)
			}
			resp, body := h.do(h.client("api.test", true), req)
			want := "paddock: secret " + c.name + " is not for api.test; the request was not sent\n"
			if resp.StatusCode != http.StatusForbidden || body != want {
				t.Errorf("%s in the %s: %s %q, want 403 %q", c.name, where, resp.Status, body, want)
			}
			if s := h.takeSeen(); len(s) != 0 {
				t.Errorf("%s in the %s: upstream saw %+v", c.name, where, s)
			}
			rs := requestRecords(h.takeRecords())
			if len(rs) != 1 || rs[0].Verdict != netpolicy.Deny || rs[0].Status != 403 || rs[0].Rule != c.rule || len(rs[0].Secrets) != 0 {
				t.Errorf("%s in the %s: records %+v", c.name, where, rs)
			}
		}
	}
}

// A secret set to pass elsewhere lets its placeholder go to other hosts
// unchanged.
func TestPassElsewhere(t *testing.T) {
	o := def("o", "X-Api-Key", "", "other.test")
	o.PassElsewhere = true
	h := newHarness(t, []secret.Definition{def("t", "X-Api-Key", "", "api.test"), o}, map[string]string{"t": value, "o": otherValue})
	resp, _ := h.do(h.client("api.test", true), get(t, "https://api.test/echo", "X-Other", placeholder("o")))
	s := h.takeSeen()
	if resp.StatusCode != 200 || len(s) != 1 || s[0].Header.Get("X-Other") != placeholder("o") || s[0].Header.Get("X-Api-Key") != value {
		t.Fatalf("%s; upstream saw %+v", resp.Status, s)
	}
	rs := requestRecords(h.takeRecords())
	if len(rs) != 1 || rs[0].Rule != "secret t injected; secret o placeholder passed unchanged (pass_elsewhere)" {
		t.Fatalf("records %+v", rs)
	}
}

// A request whose Host is not the connection's host is refused (421).
func TestHostMismatch(t *testing.T) {
	h := newHarness(t, []secret.Definition{def("t", "X-Api-Key", "", "api.test")}, map[string]string{"t": value})
	for _, host := range []string{"other.test", "api.test:8443", "evil.api.test"} {
		for _, h2 := range []bool{false, true} {
			req := get(t, "https://api.test/echo", "X-Api-Key", placeholder("t"))
			req.Host = host
			resp, body := h.do(h.client("api.test", h2), req)
			if resp.StatusCode != http.StatusMisdirectedRequest || !strings.Contains(body, "this connection is for api.test") {
				t.Errorf("Host %s: %s %q", host, resp.Status, body)
			}
		}
	}
	if s := h.takeSeen(); len(s) != 0 {
		t.Fatalf("upstream saw %+v", s)
	}
	for _, r := range requestRecords(h.takeRecords()) {
		if r.Verdict != netpolicy.Deny || r.Status != 421 {
			t.Fatalf("record %+v", r)
		}
	}
	// The host in another case, with its port, is the same host.
	req := get(t, "https://api.test/echo")
	req.Host = "API.test:443"
	if resp, _ := h.do(h.client("api.test", false), req); resp.StatusCode != 200 {
		t.Fatalf("Host API.test:443: %s", resp.Status)
	}
}

// A value that cannot be had answers 502 with the error; nothing is sent.
func TestValueError(t *testing.T) {
	h := newHarness(t, []secret.Definition{def("f", "X-Api-Key", "", "fail.test")}, map[string]string{})
	h.secrets.errs["f"] = errors.New(`secret "f": command failed: exit status 3`)
	resp, body := h.do(h.client("fail.test", true), get(t, "https://fail.test/echo"))
	if want := "paddock: secret f: secret \"f\": command failed: exit status 3\n"; resp.StatusCode != http.StatusBadGateway || body != want {
		t.Fatalf("%s %q, want 502 %q", resp.Status, body, want)
	}
	if s := h.takeSeen(); len(s) != 0 {
		t.Fatalf("upstream saw %+v", s)
	}
	rs := requestRecords(h.takeRecords())
	if len(rs) != 1 || rs[0].Verdict != netpolicy.Deny || rs[0].Status != 502 || !strings.Contains(rs[0].Error, "exit status 3") {
		t.Fatalf("records %+v", rs)
	}
}

// The value is got for every request: a change counts at the next one,
// on the same connection.
func TestValueChange(t *testing.T) {
	h := newHarness(t, []secret.Definition{def("t", "X-Api-Key", "", "api.test")}, map[string]string{"t": value})
	c := h.client("api.test", false)
	h.do(c, get(t, "https://api.test/echo", "X-Api-Key", placeholder("t")))
	h.secrets.set("t", "sk-test-VALUE-two")
	h.do(c, get(t, "https://api.test/echo", "X-Api-Key", placeholder("t")))
	s := h.takeSeen()
	if len(s) != 2 || s[0].Header.Get("X-Api-Key") != value || s[1].Header.Get("X-Api-Key") != "sk-test-VALUE-two" {
		t.Fatalf("upstream saw %+v", s)
	}
}

// A request body goes upstream whole, over either protocol.
func TestRequestBody(t *testing.T) {
	h := newHarness(t, []secret.Definition{def("t", "X-Api-Key", "", "api.test")}, map[string]string{"t": value})
	for _, h2 := range []bool{false, true} {
		body := strings.Repeat("x", 1<<20)
		req, _ := http.NewRequest("POST", "https://api.test/upload", strings.NewReader(body))
		req.Header.Set("X-Api-Key", placeholder("t"))
		resp, got := h.do(h.client("api.test", h2), req)
		s := h.takeSeen()
		if resp.StatusCode != 200 || got != "1048576" || len(s) != 1 || s[0].Header.Get("X-Api-Key") != value {
			t.Fatalf("h2 %v: %s %q; upstream saw %+v", h2, resp.Status, got, s)
		}
	}
}

// A streamed response reaches the guest as it is written, before it ends.
func TestStreaming(t *testing.T) {
	h := newHarness(t, []secret.Definition{def("t", "X-Api-Key", "", "api.test")}, map[string]string{"t": value})
	for _, h2 := range []bool{false, true} {
		resp, err := h.client("api.test", h2).Do(get(t, "https://api.test/stream"))
		if err != nil {
			t.Fatal(err)
		}
		line, err := bufio.NewReader(resp.Body).ReadString('\n')
		resp.Body.Close()
		if err != nil || line != "data: first\n" {
			t.Fatalf("h2 %v: first line %q, %v", h2, line, err)
		}
	}
}

// An Upgrade (WebSocket) request is switched and its bytes relayed.
func TestUpgrade(t *testing.T) {
	h := newHarness(t, []secret.Definition{def("t", "X-Api-Key", "", "api.test")}, map[string]string{"t": value})
	h.up.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "websocket" || r.Header.Get("X-Api-Key") != value {
			http.Error(w, "want an upgrade with the value", 400)
			return
		}
		conn, rw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		rw.Flush()
		io.Copy(conn, rw) // echo
	})
	c, err := tls.Dial("tcp", h.listen("api.test", 443), &tls.Config{ServerName: "api.test", RootCAs: h.guestCAs, NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: api.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nX-Api-Key: "+placeholder("t")+"\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	io.WriteString(c, "ping\n")
	if line, err := br.ReadString('\n'); line != "ping\n" {
		t.Fatalf("echo %q, %v", line, err)
	}
}

// Plain HTTP is sent on as it is, but a request with a placeholder, even
// one for the host, is refused.
func TestPlainHTTP(t *testing.T) {
	h := newHarness(t, []secret.Definition{def("t", "X-Api-Key", "", "api.test")}, map[string]string{"t": value})
	plain := httptestPlain(t, h)
	addr := h.listenPlain("api.test", plain)
	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	}}}
	resp, body := h.do(c, get(t, "http://api.test/echo", "X-Api-Key", placeholder("t")))
	if resp.StatusCode != 403 || !strings.Contains(body, "secret t would go in clear text to api.test") {
		t.Fatalf("%s %q", resp.Status, body)
	}
	if s := h.takeSeen(); len(s) != 0 {
		t.Fatalf("upstream saw %+v", s)
	}
	resp, _ = h.do(c, get(t, "http://api.test/echo"))
	s := h.takeSeen()
	if resp.StatusCode != 200 || len(s) != 1 || s[0].Header.Get("X-Api-Key") != "" {
		t.Fatalf("%s; upstream saw %+v", resp.Status, s)
	}
	rs := requestRecords(h.takeRecords())
	if len(rs) != 2 || rs[0].Proto != "http" || rs[0].Verdict != netpolicy.Deny || rs[1].Verdict != netpolicy.Allow || rs[1].Rule != "plain HTTP, no placeholder" {
		t.Fatalf("records %+v", rs)
	}
}

// httptestPlain serves the harness's upstream over plain HTTP.
func httptestPlain(t *testing.T, h *harness) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(h.upstream)}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return l.Addr().String()
}

// listenPlain is listen for port 80, dialling upstream.
func (h *harness) listenPlain(host, upstream string) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go h.p.Serve(context.Background(), c, nil, host, 80, func(ctx context.Context) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, "tcp", upstream)
			})
		}
	}()
	return l.Addr().String()
}

// A TLS connection to a host no secret is for is relayed unread: the
// guest sees the upstream's own certificate.
func TestOtherHostRelayed(t *testing.T) {
	h := newHarness(t, []secret.Definition{def("t", "X-Api-Key", "", "api.test")}, map[string]string{"t": value})
	addr := h.listen("plain.test", 443)
	c, err := tls.Dial("tcp", addr, &tls.Config{ServerName: "plain.test", RootCAs: h.upCAs})
	if err != nil {
		t.Fatalf("the guest does not reach the upstream's own TLS: %v", err)
	}
	c.Close()
	if rs := requestRecords(h.takeRecords()); len(rs) != 0 {
		t.Fatalf("records %+v", rs)
	}
}

func TestIntercepts(t *testing.T) {
	p := New(Config{Secrets: &fakeSecrets{defs: []secret.Definition{def("t", "X", "", "api.test"), def("w", "X", "", "*.wild.test", "*.wild.test:8443")}}})
	none := New(Config{Secrets: &fakeSecrets{}})
	for _, c := range []struct {
		p    *Proxy
		name string
		port uint16
		want bool
	}{
		{p, "api.test", 443, true},
		{p, "other.test", 443, false},
		{p, "api.test", 80, true},
		{p, "other.test", 80, true}, // read for placeholders
		{p, "api.test", 8443, false},
		{p, "api.test", 22, false},
		{p, "a.wild.test", 443, true},
		{p, "a.b.wild.test", 8443, true},
		{p, "wild.test", 443, false},
		{p, "a.wild.test", 9443, false},
		{none, "api.test", 443, false},
		{none, "api.test", 80, false},
	} {
		if got := c.p.Intercepts(c.name, c.port); got != c.want {
			t.Errorf("Intercepts(%s, %d) = %v, want %v", c.name, c.port, got, c.want)
		}
	}
}

// The bound secrets are read again after a second; when they cannot be,
// the last known stay.
func TestBoundReread(t *testing.T) {
	f := &fakeSecrets{defs: []secret.Definition{def("t", "X", "", "api.test")}}
	p := New(Config{Secrets: f})
	now := time.Now()
	p.now = func() time.Time { return now }
	if !p.Intercepts("api.test", 443) || p.Intercepts("new.test", 443) {
		t.Fatal("the first definitions")
	}
	f.mu.Lock()
	f.defs = []secret.Definition{def("n", "X", "", "new.test")}
	f.mu.Unlock()
	if p.Intercepts("new.test", 443) {
		t.Fatal("read again within a second")
	}
	now = now.Add(boundTTL)
	if !p.Intercepts("new.test", 443) || p.Intercepts("api.test", 443) {
		t.Fatal("not read again after a second")
	}
	f.mu.Lock()
	f.boundErr = errors.New("the store is unreadable")
	f.mu.Unlock()
	now = now.Add(boundTTL)
	if !p.Intercepts("new.test", 443) {
		t.Fatal("a failed read dropped the last known definitions")
	}
}

// With no roots given, the proxy trusts the system's and the file
// $PADDOCK_UPSTREAM_CA names.
func TestUpstreamCAFromEnv(t *testing.T) {
	h := newHarness(t, []secret.Definition{def("t", "X-Api-Key", "", "api.test")}, map[string]string{"t": value})
	upPEM := filepath.Join(t.TempDir(), "up.pem")
	if err := os.WriteFile(upPEM, h.upPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv(UpstreamCAEnv, upPEM)
	cfg := h.p.cfg
	cfg.UpstreamRoots = nil
	h.p = New(cfg)
	if resp, _ := h.do(h.client("api.test", true), get(t, "https://api.test/echo")); resp.StatusCode != 200 {
		t.Fatalf("%s", resp.Status)
	}
	t.Setenv(UpstreamCAEnv, "")
	h.p = New(cfg)
	if resp, _ := h.do(h.client("api.test", true), get(t, "https://api.test/echo")); resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("an upstream no root vouches for: %s, want 502", resp.Status)
	}
}

// Every connection's goroutines and upstream connections end with it,
// whether it sent requests, was refused, went away or left a stream.
func TestConnectionsEnd(t *testing.T) {
	h := newHarness(t, []secret.Definition{def("t", "X-Api-Key", "", "api.test")}, map[string]string{"t": value})
	addr := h.listen("api.test", 443)
	before := runtime.NumGoroutine()
	for i := range 30 {
		tr := &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, "tcp", addr)
			},
			TLSClientConfig:   &tls.Config{RootCAs: h.guestCAs},
			ForceAttemptHTTP2: i%2 == 0,
		}
		switch i % 4 {
		case 3: // a stream the guest abandons midway
			resp, err := (&http.Client{Transport: tr}).Do(get(t, "https://api.test/stream"))
			if err != nil {
				t.Fatal(err)
			}
			bufio.NewReader(resp.Body).ReadString('\n')
			resp.Body.Close()
		case 0:
			h.do(&http.Client{Transport: tr}, get(t, "https://api.test/echo"))
		case 1:
			h.do(&http.Client{Transport: tr}, get(t, "https://api.test/echo", "X-Api-Key", placeholder("nosuch")))
		case 2: // a guest that goes away before its handshake
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			c.Write([]byte{0x16, 3, 1})
			c.Close()
		}
		tr.CloseIdleConnections()
	}
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before+2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before+2 {
		buf := make([]byte, 1<<20)
		t.Fatalf("%d goroutines after 30 connections ended, %d before:\n%s", n, before, buf[:runtime.Stack(buf, true)])
	}
}

// A wildcard secret serves the names under it; a secret for the very name
// takes its place there: the two are not merged.
func TestWildcardHosts(t *testing.T) {
	h := newHarness(t, []secret.Definition{def("w", "X-W", "", "*.api.test"), def("e", "X-E", "", "one.api.test")},
		map[string]string{"w": "wild-value", "e": "exact-value"})
	h.do(h.client("two.api.test", true), get(t, "https://two.api.test/echo"))
	h.do(h.client("one.api.test", true), get(t, "https://one.api.test/echo"))
	s := h.takeSeen()
	if len(s) != 2 {
		t.Fatalf("upstream saw %+v", s)
	}
	if s[0].Header.Get("X-W") != "wild-value" || s[0].Header.Get("X-E") != "" {
		t.Errorf("two.api.test: %v", s[0].Header)
	}
	if s[1].Header.Get("X-E") != "exact-value" || s[1].Header.Get("X-W") != "" {
		t.Errorf("one.api.test: %v", s[1].Header)
	}
}
