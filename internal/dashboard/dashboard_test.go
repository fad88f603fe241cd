package dashboard

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/paddock-dev/paddock/internal/apikey"
	"github.com/paddock-dev/paddock/internal/sandbox"
	"github.com/paddock-dev/paddock/internal/store"
)

// fixture is a dashboard over a home with two keys and three sandboxes
// that never ran (one per owner: a, b and the CLI's ""), served by
// httptest.
type fixture struct {
	d          *Dashboard
	srv        *httptest.Server
	keys       *apikey.Store
	keyA, keyB string
}

func newFixture(t *testing.T) *fixture {
	home := store.Home(t.TempDir())
	keys := apikey.Open(home)
	a, err := keys.Create("a")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := keys.Create("b")
	for name, owner := range map[string]string{"of-a": "a", "of-b": "b", "of-cli": ""} {
		l := home.Sandbox(name)
		os.MkdirAll(l.Dir, 0o700)
		if err := store.WriteJSON(l.Config(), store.SandboxConfig{Name: name, Template: "tiny", Owner: owner}); err != nil {
			t.Fatal(err)
		}
	}
	d := New(Config{Manager: &sandbox.Manager{Home: home}, Keys: keys, Admins: []string{"b"}})
	srv := httptest.NewServer(d)
	t.Cleanup(srv.Close)
	return &fixture{d: d, srv: srv, keys: keys, keyA: a, keyB: b}
}

// client logs in with key and returns a client with the session.
func (f *fixture) client(t *testing.T, key string) *http.Client {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp := f.do(t, c, "POST", "/ui/login", f.srv.URL, url.Values{"key": {key}}.Encode())
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	ck := resp.Cookies()
	if len(ck) != 1 || !ck[0].HttpOnly || ck[0].SameSite != http.SameSiteStrictMode || ck[0].Path != "/ui/" || strings.Contains(ck[0].Value, key) {
		t.Fatalf("session cookie %+v", ck)
	}
	return c
}

// do makes a request with origin as its Origin ("" for none).
func (f *fixture) do(t *testing.T, c *http.Client, method, path, origin, form string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(method, f.srv.URL+path, strings.NewReader(form))
	if form != "" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

func body(t *testing.T, c *http.Client, url string) (int, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestLoginOnlyWithoutSession(t *testing.T) {
	f := newFixture(t)
	for _, p := range []string{"/ui/", "/ui/s/of-a", "/ui/api/me", "/ui/api/sandboxes", "/ui/api/sandboxes/of-a/logs/console", "/ui/api/sandboxes/of-a/terminal", "/ui/assets/app.js", "/ui/no-such"} {
		code, b := body(t, http.DefaultClient, f.srv.URL+p)
		if code != http.StatusUnauthorized || !strings.Contains(b, `id="login"`) || strings.Contains(b, "of-a") {
			t.Errorf("GET %s: %d %.200q", p, code, b)
		}
	}
	if code, b := body(t, http.DefaultClient, f.srv.URL+"/ui/login"); code != 200 || !strings.Contains(b, `id="login"`) {
		t.Errorf("GET /ui/login: %d", code)
	}
	// A forged cookie is no session.
	req, _ := http.NewRequest("GET", f.srv.URL+"/ui/api/me", nil)
	req.AddCookie(&http.Cookie{Name: cookieName, Value: "00"})
	if resp, _ := http.DefaultClient.Do(req); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("a forged cookie: %d", resp.StatusCode)
	}
}

func TestLogin(t *testing.T) {
	f := newFixture(t)
	c := http.DefaultClient
	for _, tc := range []struct {
		origin, key string
		want        int
	}{
		{"", f.keyA, http.StatusForbidden},                         // no Origin, no Referer
		{"http://evil.test", f.keyA, http.StatusForbidden},         // another site
		{f.srv.URL, "e2b_" + strings.Repeat("0", 40), 401},         // not a key
		{f.srv.URL, "", 401},                                       // no key
		{"https://" + f.srv.Listener.Addr().String(), f.keyA, 403}, // another scheme
	} {
		resp := f.do(t, c, "POST", "/ui/login", tc.origin, url.Values{"key": {tc.key}}.Encode())
		if resp.StatusCode != tc.want || len(resp.Cookies()) != 0 {
			t.Errorf("login from %q with %.8q: %d %v, want %d and no cookie", tc.origin, tc.key, resp.StatusCode, resp.Cookies(), tc.want)
		}
	}
	s := f.client(t, f.keyA)
	if code, b := body(t, s, f.srv.URL+"/ui/api/me"); code != 200 || !strings.Contains(b, `"key":"a"`) {
		t.Fatalf("me: %d %s", code, b)
	}
	// Changes need the dashboard's own origin.
	for _, origin := range []string{"", "http://evil.test", "null"} {
		if resp := f.do(t, s, "POST", "/ui/api/sandboxes/of-a/pause", origin, ""); resp.StatusCode != http.StatusForbidden {
			t.Errorf("a change from origin %q: %d, want 403", origin, resp.StatusCode)
		}
	}
	// Removing the key ends its sessions.
	if err := f.keys.Remove("a"); err != nil {
		t.Fatal(err)
	}
	if code, _ := body(t, s, f.srv.URL+"/ui/api/me"); code != http.StatusUnauthorized {
		t.Fatalf("me after the key was removed: %d", code)
	}
	// Logging out ends a session.
	s = f.client(t, f.keyB)
	f.do(t, s, "POST", "/ui/logout", f.srv.URL, "")
	if code, _ := body(t, s, f.srv.URL+"/ui/api/me"); code != http.StatusUnauthorized {
		t.Fatalf("me after logout: %d", code)
	}
}

func TestWhoSeesWhat(t *testing.T) {
	f := newFixture(t)
	names := func(c *http.Client) []string {
		_, b := body(t, c, f.srv.URL+"/ui/api/sandboxes")
		var list []sandboxView
		if err := json.Unmarshal([]byte(b), &list); err != nil {
			t.Fatalf("%v: %s", err, b)
		}
		var out []string
		for _, s := range list {
			out = append(out, s.Name)
		}
		return out
	}
	a, admin := f.client(t, f.keyA), f.client(t, f.keyB)
	if got := strings.Join(names(a), ","); got != "of-a" {
		t.Errorf("key a sees %s, want of-a", got)
	}
	if got := strings.Join(names(admin), ","); got != "of-a,of-b,of-cli" {
		t.Errorf("admin key b sees %s, want every sandbox", got)
	}
	for _, p := range []string{"/ui/api/sandboxes/of-cli", "/ui/api/sandboxes/of-b/stats", "/ui/api/sandboxes/of-b/logs/net"} {
		if code, _ := body(t, a, f.srv.URL+p); code != http.StatusNotFound {
			t.Errorf("key a GET %s: %d, want 404", p, code)
		}
	}
	if resp := f.do(t, a, "POST", "/ui/api/sandboxes/of-cli/remove", f.srv.URL, ""); resp.StatusCode != http.StatusNotFound {
		t.Errorf("key a removes the CLI's sandbox: %d, want 404", resp.StatusCode)
	}
	if code, b := body(t, a, f.srv.URL+"/ui/api/sandboxes/of-a"); code != 200 || !strings.Contains(b, `"state":"created"`) {
		t.Errorf("key a GET its own: %d %s", code, b)
	}
}

func TestPageBuiltOrNot(t *testing.T) {
	f := newFixture(t)
	code, b := body(t, f.client(t, f.keyA), f.srv.URL+"/ui/")
	switch {
	case built() && (code != 200 || !strings.Contains(b, "/ui/assets/app.js")):
		t.Errorf("built: %d %s", code, b)
	case !built() && (code != http.StatusServiceUnavailable || !strings.Contains(b, "dashboard not built: run make build")):
		t.Errorf("not built: %d %s", code, b)
	}
}

func TestSecureCookieOverTLS(t *testing.T) {
	f := newFixture(t)
	srv := httptest.NewTLSServer(f.srv.Config.Handler)
	defer srv.Close()
	c := srv.Client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	for origin, want := range map[string]int{srv.URL: http.StatusSeeOther, "http://" + srv.Listener.Addr().String(): http.StatusForbidden} {
		req, _ := http.NewRequest("POST", srv.URL+"/ui/login", strings.NewReader(url.Values{"key": {f.keyA}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", origin)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("login over TLS from %s: %d, want %d", origin, resp.StatusCode, want)
		}
		if want == http.StatusSeeOther && (len(resp.Cookies()) != 1 || !resp.Cookies()[0].Secure) {
			t.Errorf("session cookie over TLS: %+v, want Secure", resp.Cookies())
		}
	}
}

func TestCloseEndsStreams(t *testing.T) {
	f := newFixture(t)
	c := f.client(t, f.keyA)
	resp, err := c.Get(f.srv.URL + "/ui/api/sandboxes/of-a/logs/console")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("log stream: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	ended := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, resp.Body)
		ended <- err
	}()
	f.d.Close()
	select {
	case <-ended:
	case <-time.After(5 * time.Second):
		t.Fatal("the log stream goes on after Close")
	}
}

func TestSessionsPerKeyBounded(t *testing.T) {
	var ss sessions
	ss.m = map[string]session{}
	start := time.Now().Add(time.Hour)
	var tokens []string
	for i := range maxSessionsPerKey + 3 {
		tokens = append(tokens, ss.add(session{Key: "a", KeyHash: "h", Expires: start.Add(time.Duration(i) * time.Second)}))
	}
	other := ss.add(session{Key: "b", KeyHash: "h", Expires: start})
	for i, tok := range tokens {
		_, ok := ss.get(tok)
		if want := i >= 3; ok != want {
			t.Errorf("session %d of key a live: %v, want %v", i, ok, want)
		}
	}
	if _, ok := ss.get(other); !ok {
		t.Error("key b's session ended by key a's logins")
	}
}

// A login outlives a restart of serve: a new Dashboard on the same home
// knows the session; the file holds no token and only its owner reads
// it; logging out ends the session for the next restart too.
func TestSessionsOutliveRestart(t *testing.T) {
	f := newFixture(t)
	s := f.client(t, f.keyA)
	home := f.d.m.Home
	restart := func() *httptest.Server {
		srv := httptest.NewServer(New(Config{Manager: &sandbox.Manager{Home: home}, Keys: f.keys}))
		t.Cleanup(srv.Close)
		return srv
	}
	srv := restart()
	jar := s.Jar
	u, _ := url.Parse(f.srv.URL + "/ui/")
	u2, _ := url.Parse(srv.URL + "/ui/")
	jar.SetCookies(u2, jar.Cookies(u))
	if code, b := body(t, s, srv.URL+"/ui/api/me"); code != 200 || !strings.Contains(b, `"key":"a"`) {
		t.Fatalf("me after a restart: %d %s", code, b)
	}
	st, err := os.Stat(home.DashboardSessions())
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("sessions file: %v %v", st, err)
	}
	raw, _ := os.ReadFile(home.DashboardSessions())
	for _, c := range jar.Cookies(u2) {
		if strings.Contains(string(raw), c.Value) {
			t.Fatal("the sessions file holds a token")
		}
	}
	if resp := f.do(t, s, "POST", "/ui/logout", f.srv.URL, ""); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout: %d", resp.StatusCode)
	}
	srv = restart()
	if code, _ := body(t, s, srv.URL+"/ui/api/me"); code != http.StatusUnauthorized {
		t.Fatalf("me after logout and a restart: %d", code)
	}
	// A damaged file: the server starts, and everyone logs in again.
	os.WriteFile(home.DashboardSessions(), []byte("{"), 0o600)
	srv = restart()
	if code, b := body(t, http.DefaultClient, srv.URL+"/ui/"); code != http.StatusUnauthorized || !strings.Contains(b, `id="login"`) {
		t.Fatalf("with a damaged sessions file: %d %s", code, b)
	}
}
