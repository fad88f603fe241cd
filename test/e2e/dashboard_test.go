package e2e

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/coder/websocket"
)

// rowsJS is the terminal's screen as the page shows it: the DOM
// renderer's rows, one line each.
const rowsJS = `Array.from(document.querySelectorAll('#terminal .xterm-rows > div')).map(r => r.textContent.replace(/\u00a0/g, ' ')).join('\n')`

// TestDashboard drives the dashboard of paddock serve in headless
// Chromium, as a person would: log in, find the sandbox the CLI made, type
// in its terminal, resize the window, allow a denied host from the
// network table, and remove the sandbox; and checks that without a login
// there is only the login page, that a WebSocket from another origin is
// refused, and that what the guest prints is shown as text.
func TestDashboard(t *testing.T) {
	e := newEnv(t, "tiny")
	key := strings.TrimSpace(e.ok("apikey", "create", "admin"))
	base, _ := e.serve(t, "--dashboard-admin", "admin")
	denied := httpServer(t, "127.0.0.13:80", "hello from denied")
	// denied.test is pinned to a loopback address the policy opens; the
	// name itself is not allowed until the dashboard allows it.
	e.create("dash", "--add-host", "denied.test:127.0.0.13", "--allow-cidr", "127.0.0.13/32")

	t.Run("without a login only the login page", func(t *testing.T) { checkLoginOnly(t, base) })
	t.Run("a WebSocket from another origin is refused", func(t *testing.T) { checkForeignOrigin(t, base, key) })

	b := newBrowser(t)
	login(t, b, base, key)
	b.waitJS("the CLI's sandbox in the list", 30*time.Second, `!!document.querySelector('#sandboxes tr[data-name="dash"][data-state="running"]')`)
	b.screenshot("sandboxes")

	b.run("open the sandbox", 20*time.Second, chromedp.Navigate(base+"/ui/s/dash"))
	b.waitJS("the terminal connected", 60*time.Second, `document.getElementById('term-status')?.textContent === 'connected' && /[$#] *$/m.test(`+rowsJS+`)`)
	t.Run("terminal", func(t *testing.T) { dashTerminal(t, b) })
	t.Run("resize follows the window", func(t *testing.T) { dashResize(t, b) })
	t.Run("a denied host, allowed from the network table", func(t *testing.T) { dashAllowDenied(t, e, b, denied) })
	t.Run("what the guest prints is text", func(t *testing.T) { dashGuestText(t, e, b) })
	t.Run("chart", func(t *testing.T) { dashChart(t, e, b) })
	t.Run("pause, resume, checkpoint and reset", func(t *testing.T) { dashLifecycle(t, e, b) })
	t.Run("create and remove", func(t *testing.T) { dashCreateRemove(t, e, b, base) })
}

// eval runs js for its effects.
func (b *browser) eval(js string) {
	b.t.Helper()
	evalJS[any](b, js+"; null")
}

func login(t *testing.T, b *browser, base, key string) {
	t.Helper()
	b.run("the login page", 20*time.Second, chromedp.Navigate(base+"/ui/"))
	b.waitJS("the login form", 10*time.Second, `!!document.getElementById('login')`)
	b.screenshot("login")
	b.run("log in", 20*time.Second,
		chromedp.SendKeys(chromedp.CSS("#key"), key),
		chromedp.Click(chromedp.CSS("#login button")))
	b.waitJS("the sandboxes page", 20*time.Second, `location.pathname === '/ui/' && !!document.getElementById('sandboxes')`)
}

// sttySize types stty size in the terminal and reads the answer, rows
// and columns, from the screen.
func sttySize(t *testing.T, b *browser) [2]string {
	t.Helper()
	b.eval(`window.paddockTerminal.clear()`)
	b.run("type stty size", 10*time.Second, typeKeys("clear; stty size\r"))
	var got [2]string
	re := regexp.MustCompile(`(?m)^(\d+) (\d+)\s*$`)
	b.waitJS("stty size's answer", 20*time.Second, `/^\d+ \d+\s*$/m.test(`+rowsJS+`)`)
	m := re.FindStringSubmatch(evalJS[string](b, rowsJS))
	if m == nil {
		t.Fatal("no stty size answer on the screen")
	}
	got[0], got[1] = m[1], m[2]
	return got
}

// checkLoginOnly asks for the dashboard's pages, data and assets without a
// session: every answer is the login page, with nothing of a sandbox.
func checkLoginOnly(t *testing.T, base string) {
	for _, p := range []string{"/ui/", "/ui/s/dash", "/ui/api/sandboxes", "/ui/api/sandboxes/dash", "/ui/api/sandboxes/dash/logs/console", "/ui/assets/app.js", "/ui/nothing"} {
		resp, err := http.Get(base + p)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(body), `id="login"`) || strings.Contains(string(body), "dash") {
			t.Errorf("GET %s without a login: %d %q", p, resp.StatusCode, tail(string(body), 300))
		}
	}
	resp, err := http.PostForm(base+"/ui/login", url.Values{"key": {"e2b_0000000000000000000000000000000000000000"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("a login without an Origin: %d, want 403", resp.StatusCode)
	}
	req, _ := http.NewRequest("POST", base+"/ui/login", strings.NewReader("key=e2b_00"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", base)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || len(resp.Cookies()) != 0 {
		t.Errorf("a wrong key: %d, cookies %v", resp.StatusCode, resp.Cookies())
	}
}

// sessionClient logs in with key and returns a client with the session
// cookie.
func sessionClient(t testing.TB, base, key string) *http.Client {
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ := http.NewRequest("POST", base+"/ui/login", strings.NewReader(url.Values{"key": {key}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", base)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	for _, ck := range resp.Cookies() {
		if !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || strings.Contains(ck.Value, key) {
			t.Fatalf("session cookie %+v: want HttpOnly, SameSite=Strict, not the key", ck)
		}
	}
	return c
}

// checkForeignOrigin opens the terminal's WebSocket with a session, from
// another origin (refused) and from the dashboard's own (a shell).
func checkForeignOrigin(t *testing.T, base, key string) {
	c := sessionClient(t, base, key)
	wsURL := "ws" + strings.TrimPrefix(base, "http") + "/ui/api/sandboxes/dash/terminal"
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, origin := range []string{"http://evil.test", "null", ""} {
		h := http.Header{}
		if origin != "" {
			h.Set("Origin", origin)
		}
		conn, resp, err := websocket.Dial(ctx, wsURL, &websocket.DialOptions{HTTPClient: c, HTTPHeader: h})
		if err == nil {
			conn.CloseNow()
			t.Fatalf("a WebSocket from origin %q was accepted", origin)
		}
		if resp == nil || resp.StatusCode != http.StatusForbidden {
			t.Fatalf("a WebSocket from origin %q: %v, want 403", origin, err)
		}
	}
	h := http.Header{"Origin": {base}}
	conn, _, err := websocket.Dial(ctx, wsURL, &websocket.DialOptions{HTTPClient: c, HTTPHeader: h})
	if err != nil {
		t.Fatalf("a WebSocket from the dashboard's origin: %v", err)
	}
	defer conn.CloseNow()
	conn.Write(ctx, websocket.MessageBinary, []byte("echo same-$((6*7))\r"))
	var seen strings.Builder
	for !strings.Contains(seen.String(), "same-42") {
		_, b, err := conn.Read(ctx)
		if err != nil {
			t.Fatalf("read the terminal: %v (so far %q)", err, seen.String())
		}
		seen.Write(b)
	}
	if os.Getenv("PADDOCK_DEBUG") != "" {
		t.Logf("terminal: %q", seen.String())
	}
}

// dashTerminal: the terminal echoes what is typed.
func dashTerminal(t *testing.T, b *browser) {
	b = b.with(t)
	b.run("type in the terminal", 10*time.Second, typeKeys("echo hi-from-browser\r"))
	b.waitJS("the echo on the screen", 30*time.Second, `(`+rowsJS+`).split('\n').some(l => l.trim() === 'hi-from-browser')`)
	b.screenshot("terminal")
}

// dashResize: the terminal follows a window resize: stty size in the guest is
// its rows and columns.
func dashResize(t *testing.T, b *browser) {
	b = b.with(t)
	before := sttySize(t, b)
	b.run("resize the window", 10*time.Second, chromedp.EmulateViewport(1000, 700))
	b.waitJS("the terminal to refit", 10*time.Second, `window.paddockTerminal.cols !== `+before[1])
	after := sttySize(t, b)
	want := evalJS[string](b, `window.paddockTerminal.rows + ' ' + window.paddockTerminal.cols`)
	if after[0]+" "+after[1] != want || after == before {
		t.Fatalf("stty size %v before, %v after the resize; the terminal is %s", before, after, want)
	}
	b.screenshot("resized")
	b.run("restore the window", 10*time.Second, chromedp.EmulateViewport(1400, 900))
}

// dashAllowDenied: a denied host shows in the network table, and its allow
// button opens it.
func dashAllowDenied(t *testing.T, e *env, b *browser, denied *hitCounter) {
	e, b = e.with(t), b.with(t)
	if out := e.sh("dash", httpGet("denied.test", 80, "denied.test")); strings.Contains(out, "200 OK") || denied.n.Load() != 0 {
		t.Fatalf("denied.test answered before it was allowed: %q", out)
	}
	row := `document.querySelector('#net tr[data-verdict="deny"][data-host="denied.test"] button.allow')`
	b.waitJS("the denial in the network table", 30*time.Second, `!!`+row)
	b.screenshot("network-denied")
	b.eval(`const b = ` + row + `; b.dataset.clicked = '1'; b.click()`)
	b.waitJS("the allow to be taken", 20*time.Second, `document.querySelector('button.allow[data-clicked]').textContent === 'Allowed'`)
	out := e.sh("dash", httpGet("denied.test", 80, "denied.test"))
	if !strings.Contains(out, "hello from denied") || denied.n.Load() != 1 {
		t.Fatalf("after allow: got %q, server saw %d", out, denied.n.Load())
	}
	b.waitJS("the allowed request in the network table", 30*time.Second, `!!document.querySelector('#net tr[data-verdict="allow"][data-host="denied.test"]')`)
	b.screenshot("network-allowed")
}

// dashGuestText: what the guest prints (console, exec log) is shown as text,
// never as markup.
func dashGuestText(t *testing.T, e *env, b *browser) {
	e, b = e.with(t), b.with(t)
	e.ok("exec", "-u", "root", "dash", "--", "sh", "-c", `echo '<script>alert(1)</script><img src=x onerror=alert(2)>' > /dev/console`)
	b.waitJS("the console line", 30*time.Second, `document.getElementById('console').textContent.includes('<script>alert(1)</script><img src=x onerror=alert(2)>')`)
	b.waitJS("the command in the exec log", 30*time.Second, `document.getElementById('exec').textContent.includes('<script>alert(1)</script>')`)
	if n := evalJS[int](b, `document.querySelectorAll('main script, main img').length`); n != 0 {
		t.Fatalf("%d script or img elements made from the guest's output", n)
	}
	time.Sleep(500 * time.Millisecond)
	if n := b.dialogs.Load(); n != 0 {
		t.Fatalf("%d JavaScript dialogs opened", n)
	}
	b.screenshot("console")
}

// dashChart: the chart samples the sandbox's CPU.
func dashChart(t *testing.T, e *env, b *browser) {
	e, b = e.with(t), b.with(t)
	e.sh("dash", "timeout 4 sh -c 'while :; do :; done'")
	b.waitJS("three samples in the chart", 30*time.Second, `document.querySelectorAll('#chart polyline')[0].getAttribute('points').split(' ').length >= 3`)
	b.waitJS("the CPU in the legend", 10*time.Second, `/CPU \d+%/.test(document.querySelector('#chart .legend').textContent)`)
	b.screenshot("chart")
}

// dashLifecycle: the sandbox page's pause, resume, checkpoint and reset
// buttons.
func dashLifecycle(t *testing.T, e *env, b *browser) {
	e, b = e.with(t), b.with(t)
	state := func(want string) {
		b.waitJS("state "+want, 60*time.Second, `document.getElementById('state').textContent === '`+want+`'`)
	}
	b.eval(`document.querySelector('.head button.pause').click()`)
	state("paused")
	b.eval(`document.querySelector('.head button.resume').click()`)
	state("running")
	b.eval(`document.querySelector('.head button.checkpoint').click()`)
	b.waitJS("the checkpoint saved", 60*time.Second, `document.getElementById('flash').textContent.includes('checkpoint dash-')`)
	if out := e.ok("checkpoint", "ls"); !strings.Contains(out, "dash-") {
		t.Fatalf("paddock checkpoint ls has no checkpoint of dash:\n%s", out)
	}
	dashFork(t, e, b)
	e.ok("exec", "-u", "root", "dash", "--", "touch", "/marker")
	b.eval(`const r = document.querySelector('.head button.reset'); r.click(); r.click()`)
	b.waitJS("the reset done", 90*time.Second, `document.getElementById('flash').textContent.includes('reset: dash')`)
	state("running")
	if out, _, code := e.run("exec", "dash", "--", "ls", "/marker"); code == 0 {
		t.Fatalf("/marker is still there after the reset: %q", out)
	}
	b.waitJS("the terminal back", 60*time.Second, `document.getElementById('term-status').textContent === 'connected'`)
	b.screenshot("after-reset")
}

// dashFork: the sandbox page's fork makes a new running sandbox with the
// guest's state as it was, and the checkpoint it went through is gone.
func dashFork(t *testing.T, e *env, b *browser) {
	before := e.ok("checkpoint", "ls")
	e.ok("exec", "dash", "--", "sh", "-c", "echo before-the-fork > /tmp/fork-marker")
	b.eval(`document.querySelector('.head button.fork').click()`)
	b.waitJS("the fork made", 90*time.Second, `document.getElementById('flash').textContent.startsWith('forked dash as ')`)
	fork := strings.TrimPrefix(evalJS[string](b, `document.getElementById('flash').textContent`), "forked dash as ")
	if out := e.ok("exec", fork, "--", "cat", "/tmp/fork-marker"); out != "before-the-fork\n" {
		t.Fatalf("the fork %q's marker: %q", fork, out)
	}
	if after := e.ok("checkpoint", "ls"); len(strings.Split(after, "\n")) != len(strings.Split(before, "\n")) {
		t.Fatalf("the fork left a checkpoint:\n%s\nbefore:\n%s", after, before)
	}
	e.ok("rm", "-f", fork)
}

// dashCreateRemove: a sandbox made from the list page, and both removed from
// it.
func dashCreateRemove(t *testing.T, e *env, b *browser, base string) {
	e, b = e.with(t), b.with(t)
	b.run("back to the list", 20*time.Second, chromedp.Navigate(base+"/ui/"))
	b.waitJS("the templates", 30*time.Second, `!!document.querySelector('#create-template option[value="tiny"]')`)
	b.eval(`document.getElementById('create-template').value = 'tiny'; document.getElementById('create-name').value = 'made-here';
		document.getElementById('create-cpus').value = '1'; document.getElementById('create-memory').value = '512M'`)
	b.eval(`document.getElementById('create').click()`)
	b.waitJS("the new sandbox", 90*time.Second, `!!document.querySelector('#sandboxes tr[data-name="made-here"][data-state="running"]')`)
	if info := e.inspect("made-here"); info.CPUs != 1 || info.MemoryBytes != 512<<20 {
		t.Fatalf("made-here: %d CPUs, %d bytes of memory; the form asked for 1 and 512M", info.CPUs, info.MemoryBytes)
	}
	b.screenshot("created")
	for _, name := range []string{"dash", "made-here"} {
		btn := `document.querySelector('#sandboxes tr[data-name="` + name + `"] button.remove')`
		b.waitJS("the row of "+name, 30*time.Second, `!!`+btn)
		b.eval(btn + `.click(); ` + btn + `.click()`)
		b.waitJS(name+"'s row to go", 60*time.Second, `!document.querySelector('#sandboxes tr[data-name="`+name+`"]')`)
	}
	if out := e.ok("ls"); strings.Contains(out, "dash") || strings.Contains(out, "made-here") {
		t.Fatalf("paddock ls still lists them:\n%s", out)
	}
	b.screenshot("removed")
	b.run("the removed sandbox's page", 20*time.Second, chromedp.Navigate(base+"/ui/s/dash"))
	b.waitJS("its page to say it is gone", 20*time.Second, `document.getElementById('gone')?.textContent === 'no sandbox "dash"'`)
}
