package e2e

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkSecretInjection times HTTPS requests from the guest to one
// upstream server under two names: one with a bound secret (intercepted:
// the host answers TLS, injects, and sends the request on over its own
// TLS) and one without (relayed end to end). A guest program times each
// request, on a new connection each time and over one kept-alive
// connection, alternating the two names so that both see the same load.
// The guest trusts the test's authority (--ca) for the relayed name.
// docs/bench/secrets.json.
func BenchmarkSecretInjection(b *testing.B) {
	pki := newTestPKI(b, "inject.test", "plain.test")
	caFile := upstreamCA(b, pki)
	b.Setenv("PADDOCK_UPSTREAM_CA", caFile)
	e := newEnv(b, "debian")
	th := newTestHost(b)
	up := &upstream{}
	startUpstream(b, th, pki, up)
	guestProgram(b, e.ws, "timedget", timedGetSrc)
	e.runOK("bench-value\n", "secret", "set", "t", "--host", "inject.test", "--header", "X-Api-Key", "--stdin")
	e.ok("create", "--name", "bench", "--template", "debian", "--memory", "1G", "--cpus", "1", "--workspace", e.ws,
		"--secret", "t", "--ca", caFile, "--policy", "deny-all", "--allow-host", "inject.test", "--allow-host", "plain.test",
		"--add-host", "inject.test:"+th.addr, "--add-host", "plain.test:"+th.addr, "--allow-cidr", th.addr+"/32")
	defer e.run("rm", "-f", "bench")

	const rounds, per = 10, 20
	samples := map[string][]float64{}
	for r := 0; r < rounds; r++ {
		for _, keep := range []string{"0", "1"} {
			for _, host := range []string{"inject.test", "plain.test"} {
				out := e.sh("bench", fmt.Sprintf("%s/timedget https://%s/echo %d %s", e.ws, host, per, keep))
				k := host + "/keepalive=" + keep
				xs := parseMicros(b, out)
				if keep == "1" {
					xs = xs[1:] // the first request opens the connection
				}
				samples[k] = append(samples[k], xs...)
			}
		}
	}
	if n := len(up.take()); n != rounds*per*4 {
		b.Fatalf("upstream saw %d requests, want %d", n, rounds*per*4)
	}
	res := map[string]any{
		"date":  time.Now().UTC().Format(time.RFC3339),
		"host":  fmt.Sprintf("%s, %d cores", hostCPU(), runtime.NumCPU()),
		"accel": "tcg on the build machines",
		"note":  "HTTPS GET from a Go client in the guest (debian, 1 vCPU) to one server in a test network namespace under two names: inject.test has a bound secret (intercepted, value injected), plain.test has none (relayed); milliseconds per request, new connection each time or one kept-alive connection",
	}
	for _, keep := range []string{"0", "1"} {
		inj, pl := samples["inject.test/keepalive="+keep], samples["plain.test/keepalive="+keep]
		slices.Sort(inj)
		slices.Sort(pl)
		kind := map[string]string{"0": "new_connection", "1": "keepalive"}[keep]
		row := map[string]float64{
			"injected_p50_ms": percentile(inj, 50), "injected_p99_ms": percentile(inj, 99),
			"relayed_p50_ms": percentile(pl, 50), "relayed_p99_ms": percentile(pl, 99),
			"added_p50_ms": percentile(inj, 50) - percentile(pl, 50), "added_p99_ms": percentile(inj, 99) - percentile(pl, 99),
			"requests": float64(len(inj)),
		}
		for k, v := range row {
			row[k] = math.Round(v*1000) / 1000
		}
		res[kind] = row
		b.ReportMetric(row["added_p50_ms"], "ms-added-p50-"+kind)
	}
	j, _ := json.MarshalIndent(res, "", "  ")
	os.MkdirAll("../../docs/bench", 0o755)
	os.WriteFile("../../docs/bench/secrets.json", append(j, '\n'), 0o644)
	b.Logf("%s", j)
	for b.Loop() {
	}
}

// timedGetSrc is a guest program: "timedget URL N KEEPALIVE" fetches URL N
// times and prints each request's duration in microseconds, one a line.
// The CA bundle is the guest's (the paddock authority is in it).
const timedGetSrc = `package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"time"
)

func main() {
	url, n := os.Args[1], 0
	n, _ = strconv.Atoi(os.Args[2])
	keep := os.Args[3] == "1"
	tr := &http.Transport{DisableKeepAlives: !keep, ForceAttemptHTTP2: false}
	c := &http.Client{Transport: tr}
	for i := 0; i < n; i++ {
		req, _ := http.NewRequest("GET", url, nil)
		req.Header.Set("X-Api-Key", os.Getenv("T"))
		t0 := time.Now()
		resp, err := c.Do(req)
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		fmt.Println(time.Since(t0).Microseconds())
	}
}
`

// percentile returns the p-th percentile (0-100) of sorted xs.
func percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	i := int(float64(len(xs)-1) * p / 100)
	return xs[i]
}

func parseMicros(b testing.TB, out string) []float64 {
	var xs []float64
	for _, l := range strings.Fields(out) {
		v, err := strconv.ParseFloat(l, 64)
		if err != nil {
			b.Fatalf("timedget: %q", out)
		}
		xs = append(xs, v/1000)
	}
	slices.Sort(xs)
	return xs
}
