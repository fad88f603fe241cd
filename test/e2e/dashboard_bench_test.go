package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// keyEchoJS arms a measurement of one keystroke: from the keydown event
// the page sees to the change of the terminal's screen (the DOM rows
// xterm.js draws), in milliseconds; -1 when nothing changes within 5 s.
const keyEchoJS = `window.__keyEcho = new Promise((resolve) => {
  const rows = document.querySelector('#terminal .xterm-rows');
  const before = rows.textContent;
  let t0 = 0;
  document.addEventListener('keydown', () => { t0 = performance.now(); }, { capture: true, once: true });
  const mo = new MutationObserver(() => {
    if (t0 && rows.textContent !== before) { mo.disconnect(); resolve(performance.now() - t0); }
  });
  mo.observe(rows, { subtree: true, childList: true, characterData: true });
  setTimeout(() => { mo.disconnect(); resolve(-1); }, 5000);
}); true`

// BenchmarkDashboard measures, in headless Chromium, the time from a
// keystroke in a sandbox's terminal on the dashboard to its echo on the
// screen (a shell in the tiny template, through paddock serve's WebSocket,
// the supervisor and the guest's PTY), and the bundle's size gzipped, and
// writes docs/bench/dashboard.json:
//
//	go test ./test/e2e -run XXX -bench Dashboard -benchtime 1x
func BenchmarkDashboard(b *testing.B) {
	e := newEnv(b, "tiny")
	key := strings.TrimSpace(e.ok("apikey", "create", "bench"))
	base, _ := e.serve(b, "--dashboard-admin", "bench")
	e.create("bench")
	br := newBrowser(b)
	br.run("the login page", 20*time.Second, chromedp.Navigate(base+"/ui/login"))
	br.run("log in", 20*time.Second, chromedp.SendKeys(chromedp.CSS("#key"), key), chromedp.Click(chromedp.CSS("#login button")))
	br.waitJS("the sandboxes page", 20*time.Second, `!!document.getElementById('sandboxes')`)
	br.run("open the sandbox", 20*time.Second, chromedp.Navigate(base+"/ui/s/bench"))
	br.waitJS("the terminal connected", 60*time.Second, `document.getElementById('term-status')?.textContent === 'connected' && /[$#][\s\u00a0]*$/m.test(`+rowsJS+`)`)

	const keys = 100
	var ms []float64
	for i := 0; i < keys; i++ {
		evalJS[bool](br, keyEchoJS)
		br.run("type a key", 10*time.Second, typeKeys("x"))
		v := evalJS[float64](br, `window.__keyEcho`, chromedp.EvalAwaitPromise)
		if v < 0 {
			br.screenshot("no-echo")
			b.Fatalf("keystroke %d: no echo within 5 s", i)
		}
		ms = append(ms, v)
		if i%20 == 19 {
			br.run("clear the line", 10*time.Second, typeKeys("\r"))
			time.Sleep(300 * time.Millisecond)
		}
	}
	br.screenshot("bench-terminal")
	sort.Float64s(ms)
	pct := func(p float64) float64 { return float64(int(ms[int(p*float64(len(ms)-1))]*10)) / 10 }

	c := sessionClient(b, base, key)
	// With Accept-Encoding set here, the client leaves the body gzipped.
	size := func(path string) int {
		req, _ := http.NewRequest("GET", base+path, nil)
		req.Header.Set("Accept-Encoding", "gzip")
		resp, err := c.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			b.Fatalf("GET %s: %d", path, resp.StatusCode)
		}
		return len(body)
	}
	jsGz, cssGz, pageGz := size("/ui/assets/app.js"), size("/ui/assets/app.css"), size("/ui/")
	res := map[string]any{
		"keystroke_to_echo_ms": map[string]any{"p50": pct(0.5), "p90": pct(0.9), "min": pct(0), "max": pct(1), "keys": keys, "goal_p50": 60},
		"first_load_gzip_bytes": map[string]any{
			"js": jsGz, "css": cssGz, "page": pageGz, "total": jsGz + cssGz + pageGz, "goal_js": 300 << 10,
		},
		"what": "keystroke: keydown in the page to the terminal's DOM change, headless Chromium, tiny template under TCG, through paddock serve's WebSocket, the supervisor and the guest's PTY; sizes: what the server sends a browser that takes gzip",
		"when": time.Now().UTC().Format(time.RFC3339),
		"host": hostCPU(),
	}
	js, _ := json.MarshalIndent(res, "", "  ")
	if err := os.WriteFile("../../docs/bench/dashboard.json", append(js, '\n'), 0o644); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(pct(0.5), "echo-p50-ms")
	b.ReportMetric(float64(jsGz), "js-gzip-bytes")
	b.Logf("%s", js)
}
