package inject

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/paddock-dev/paddock/internal/netpolicy"
	"github.com/paddock-dev/paddock/internal/secret"
)

// serveRequest is the handler of every intercepted connection; the
// connection's session is in the request's context.
func serveRequest(w http.ResponseWriter, r *http.Request) {
	s, ok := r.Context().Value(sessionKey{}).(*session)
	if !ok {
		http.Error(w, "paddock: no session", http.StatusInternalServerError)
		return
	}
	s.serveHTTP(w, r)
}

// exchange is one request on its way: its record, written once, and the
// values it carries, kept out of every error.
type exchange struct {
	rec      netpolicy.Record
	values   []string
	recorded bool
}

type exchangeKey struct{}

// serveHTTP checks one guest request, refusing it (421, 403, 502) or
// sending it on with its secrets.
func (s *session) serveHTTP(w http.ResponseWriter, r *http.Request) {
	defer s.afterRequest()
	x := &exchange{rec: netpolicy.Record{Time: time.Now(), Event: "request", Proto: s.proto, Dest: s.dest,
		Name: s.name, Port: s.port, Method: r.Method, Path: r.URL.Path}}
	if !s.ownHost(r.Host) {
		s.refuse(w, x, http.StatusMisdirectedRequest, fmt.Sprintf("request for %q on a connection to %s", r.Host, s.name),
			fmt.Sprintf("paddock: this connection is for %s; a request for %q was not sent", s.name, r.Host))
		return
	}
	pl := s.plan(s.p.index(), r)
	if pl.refusal != "" {
		s.refuse(w, x, http.StatusForbidden, pl.rule, pl.refusal)
		return
	}
	values := make([]string, len(pl.inject))
	for i, in := range pl.inject {
		v, err := s.p.cfg.Secrets.Value(r.Context(), in.def.Name)
		if err != nil {
			x.rec.Error = err.Error()
			s.refuse(w, x, http.StatusBadGateway, "secret "+in.def.Name+" has no value",
				"paddock: secret "+in.def.Name+": "+err.Error())
			return
		}
		values[i] = v
	}
	pl.apply(r, values)
	x.values = values
	x.rec.Verdict, x.rec.Rule, x.rec.Secrets = netpolicy.Allow, pl.describe(s.secure), pl.names()
	s.proxy.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), exchangeKey{}, x)))
}

// ownHost reports whether a request's Host (or :authority) names the
// session's host, on its port if it names one.
func (s *session) ownHost(h string) bool {
	host := h
	if i := strings.LastIndexByte(h, ':'); i >= 0 && !strings.Contains(h[i:], "]") {
		if h[i+1:] != strconv.Itoa(int(s.port)) {
			return false
		}
		host = h[:i]
	}
	return netpolicy.NormalizeName(host) == s.name
}

// refuse answers the guest with code and body (plain text) and records
// the refusal; nothing is sent upstream.
func (s *session) refuse(w http.ResponseWriter, x *exchange, code int, rule, body string) {
	x.rec.Verdict, x.rec.Rule, x.rec.Status = netpolicy.Deny, rule, code
	s.p.record(x.rec)
	s.p.log.Debug("request refused", "host", s.name, "method", x.rec.Method, "path", x.rec.Path, "status", code, "rule", rule)
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	io.WriteString(w, body+"\n")
}

// response records the upstream's answer once its head has come.
func (s *session) response(resp *http.Response) error {
	if x, ok := resp.Request.Context().Value(exchangeKey{}).(*exchange); ok && !x.recorded {
		x.recorded = true
		x.rec.Status = resp.StatusCode
		s.p.record(x.rec)
	}
	return nil
}

// upstreamError answers 502 when the request could not be sent or
// answered, and records why; the error is stripped of the request's
// values.
func (s *session) upstreamError(w http.ResponseWriter, r *http.Request, err error) {
	msg := err.Error()
	x, ok := r.Context().Value(exchangeKey{}).(*exchange)
	if ok {
		msg = redact(msg, x.values)
		if !x.recorded {
			x.recorded = true
			x.rec.Status, x.rec.Error = http.StatusBadGateway, "upstream: "+msg
			s.p.record(x.rec)
		}
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusBadGateway)
	io.WriteString(w, "paddock: "+s.authority+": "+msg+"\n")
}

// redact replaces every value (and its query form) in msg.
func redact(msg string, values []string) string {
	for _, v := range values {
		if v == "" {
			continue
		}
		msg = strings.ReplaceAll(msg, v, "[secret]")
		if q := url.QueryEscape(v); q != v {
			msg = strings.ReplaceAll(msg, q, "[secret]")
		}
	}
	return msg
}

// injection is one secret a request gets: in place of its placeholder
// wherever it is in the headers, in the query string when query is set,
// and in its target header when set is (the header is absent).
type injection struct {
	def    *secret.Definition
	target secret.Target
	query  bool
	set    bool
}

// plan is what is done to one request: the secrets it gets, those whose
// placeholder passes unchanged, or why it is refused.
type plan struct {
	inject        []injection
	passed        []string
	rule, refusal string // a refusal's record rule and its answer to the guest
}

// Where a placeholder was found: a secret's value replaces it in headers,
// in the query string when the secret allows, nowhere else.
const (
	inHeader = iota
	inQuery
	inOther
)

// plan reads r's headers (basic credentials decoded), path and query for
// placeholders and decides each: a placeholder of a secret not bound, not
// for this host (unless it may pass elsewhere), or over plain HTTP is a
// refusal. Over TLS, each secret for this host whose header r lacks (or
// any whose target overrides) gets it set.
func (s *session) plan(ix *index, r *http.Request) plan {
	var pl plan
	found := func(ph string, where int) {
		if pl.refusal != "" {
			return
		}
		d := ix.placeholders[ph]
		name := placeholderName(ph)
		switch {
		case d == nil:
			pl.rule = "secret " + name + " is not bound to this sandbox"
			pl.refusal = "paddock: secret " + name + " is not for " + s.name + "; the request was not sent"
			return
		case !s.secure:
			pl.rule = "secret " + name + " placeholder in plain HTTP"
			pl.refusal = "paddock: secret " + name + " would go in clear text to " + s.name + " (a placeholder goes only over HTTPS); the request was not sent"
			return
		}
		t, ok := d.TargetFor(s.key)
		switch {
		case !ok && d.PassElsewhere:
			pl.pass(d.Name)
		case !ok:
			pl.rule = "secret " + name + " is not for " + s.key
			pl.refusal = "paddock: secret " + name + " is not for " + s.key + "; the request was not sent"
		case where == inHeader:
			pl.add(d, t)
		case where == inQuery && d.Query:
			pl.add(d, t).query = true
		}
	}
	for _, vs := range r.Header {
		for _, v := range vs {
			eachPlaceholder(v, true, func(ph string) { found(ph, inHeader) })
		}
	}
	eachPlaceholder(r.URL.Path, false, func(ph string) { found(ph, inOther) })
	eachPlaceholder(r.URL.RawQuery, false, func(ph string) { found(ph, inQuery) })
	if strings.IndexByte(r.URL.RawQuery, '%') >= 0 {
		if q, err := url.QueryUnescape(r.URL.RawQuery); err == nil {
			eachPlaceholder(q, false, func(ph string) { found(ph, inOther) })
		}
	}
	if pl.refusal != "" || !s.secure {
		return pl
	}
	for _, d := range ix.forHost(s.key) {
		t, _ := d.TargetFor(s.key)
		if (t.Override || len(r.Header.Values(t.Header)) == 0) && !pl.setting(t.Header) {
			pl.add(d, t).set = true
		}
	}
	return pl
}

// add returns d's injection, added if it is not there yet.
func (pl *plan) add(d *secret.Definition, t secret.Target) *injection {
	for i := range pl.inject {
		if pl.inject[i].def == d {
			return &pl.inject[i]
		}
	}
	pl.inject = append(pl.inject, injection{def: d, target: t})
	return &pl.inject[len(pl.inject)-1]
}

func (pl *plan) pass(name string) {
	for _, n := range pl.passed {
		if n == name {
			return
		}
	}
	pl.passed = append(pl.passed, name)
}

// setting reports whether some injection sets header.
func (pl *plan) setting(header string) bool {
	for _, in := range pl.inject {
		if in.set && strings.EqualFold(in.target.Header, header) {
			return true
		}
	}
	return false
}

// apply puts values (one per injection) into r.
func (pl *plan) apply(r *http.Request, values []string) {
	if len(pl.inject) == 0 {
		return
	}
	for _, vs := range r.Header {
		for i, v := range vs {
			vs[i] = pl.replace(v, values)
		}
	}
	for i, in := range pl.inject {
		if in.query {
			r.URL.RawQuery = strings.ReplaceAll(r.URL.RawQuery, in.def.Placeholder, url.QueryEscape(values[i]))
		}
		if in.set {
			r.Header.Set(in.target.Header, in.target.HeaderValue(values[i]))
		}
	}
}

// replace returns header value v with every injected placeholder in it,
// or in the basic credentials it carries, replaced by its value.
func (pl *plan) replace(v string, values []string) string {
	if cred, ok := basicCredentials(v); ok {
		if replaced := pl.replace(cred, values); replaced != cred {
			return v[:len("Basic ")] + base64.StdEncoding.EncodeToString([]byte(replaced))
		}
		return v
	}
	if !strings.Contains(v, secret.PlaceholderPrefix) {
		return v
	}
	for i, in := range pl.inject {
		v = strings.ReplaceAll(v, in.def.Placeholder, values[i])
	}
	return v
}

// names lists the injected secrets.
func (pl *plan) names() []string {
	if len(pl.inject) == 0 {
		return nil
	}
	names := make([]string, len(pl.inject))
	for i, in := range pl.inject {
		names[i] = in.def.Name
	}
	return names
}

// describe is the record's rule for a request sent on.
func (pl *plan) describe(secure bool) string {
	var parts []string
	switch len(pl.inject) {
	case 0:
	case 1:
		parts = append(parts, "secret "+pl.inject[0].def.Name+" injected")
	default:
		parts = append(parts, "secrets "+strings.Join(pl.names(), ", ")+" injected")
	}
	for _, n := range pl.passed {
		parts = append(parts, "secret "+n+" placeholder passed unchanged (pass_elsewhere)")
	}
	switch {
	case len(parts) > 0:
		return strings.Join(parts, "; ")
	case secure:
		return "no secret in this request"
	}
	return "plain HTTP, no placeholder"
}

// eachPlaceholder calls f for every placeholder in s and, when basic is
// set and s is HTTP basic credentials, in the decoded credentials.
func eachPlaceholder(s string, basic bool, f func(string)) {
	if basic {
		if cred, ok := basicCredentials(s); ok {
			s = cred
		}
	}
	if !strings.Contains(s, secret.PlaceholderPrefix) {
		return
	}
	for _, ph := range secret.Placeholders(s) {
		f(ph)
	}
}

// basicCredentials decodes the user:password of a "Basic ..." header
// value.
func basicCredentials(v string) (string, bool) {
	const prefix = "Basic "
	if len(v) <= len(prefix) || !strings.EqualFold(v[:len(prefix)], prefix) {
		return "", false
	}
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(v[len(prefix):]))
	if err != nil {
		return "", false
	}
	return string(b), true
}

// placeholderName is the NAME of paddock-secret-NAME-RANDOM.
func placeholderName(ph string) string {
	n := strings.TrimPrefix(ph, secret.PlaceholderPrefix)
	if i := strings.LastIndexByte(n, '-'); i > 0 {
		n = n[:i]
	}
	return n
}
