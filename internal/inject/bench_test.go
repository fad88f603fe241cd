package inject

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/paddock-dev/paddock/internal/secret"
)

// BenchmarkRequest times one GET with a secret, through the proxy (the
// placeholder replaced) and straight to the same upstream (the value
// sent by the client), on a new TLS connection per request and on one
// connection reused, over HTTP/1.1 and HTTP/2. It reports the median and
// 99th percentile in microseconds.
func BenchmarkRequest(b *testing.B) {
	h := newHarness(b, []secret.Definition{def("t", "X-Api-Key", "", "api.test")}, map[string]string{"t": value})
	h.up.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Api-Key") != value {
			http.Error(w, "no value", http.StatusUnauthorized)
			return
		}
		io.WriteString(w, "ok\n")
	})
	proxied := h.listen("api.test", 443)
	for _, c := range []struct {
		name        string
		through     bool
		reuse, h2   bool
		placeholder bool
	}{
		{"direct/new-conn", false, false, false, false},
		{"proxy/new-conn", true, false, false, true},
		{"direct/reused", false, true, false, false},
		{"proxy/reused", true, true, false, true},
		{"direct/reused-h2", false, true, true, false},
		{"proxy/reused-h2", true, true, true, true},
	} {
		b.Run(c.name, func(b *testing.B) {
			addr, roots := h.upAddr, h.upCAs
			key := value
			if c.through {
				addr, roots, key = proxied, h.guestCAs, placeholder("t")
			}
			tr := &http.Transport{
				DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
					return (&net.Dialer{}).DialContext(ctx, "tcp", addr)
				},
				TLSClientConfig:   &tls.Config{RootCAs: roots},
				ForceAttemptHTTP2: c.h2,
				DisableKeepAlives: !c.reuse,
			}
			defer tr.CloseIdleConnections()
			client := &http.Client{Transport: tr}
			req := get(b, "https://api.test/echo", "X-Api-Key", key)
			times := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for range b.N {
				start := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					b.Fatalf("%s", resp.Status)
				}
				times = append(times, time.Since(start))
			}
			b.StopTimer()
			slices.Sort(times)
			b.ReportMetric(float64(times[len(times)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(times[len(times)*99/100].Microseconds()), "p99-µs")
		})
	}
}
