// Package dashboard is the web dashboard paddock serve shows at /ui/: the
// sandboxes a key may see, live, with their actions, and a page per
// sandbox with a terminal (a WebSocket to a PTY in the guest), its exec,
// console and network logs, and a chart of its CPU and memory. It logs in
// with the API's keys and keeps a session in an HttpOnly, SameSite=Strict
// cookie; every state-changing request must come from the dashboard's own
// origin. It is a face over sandbox.Manager: the behaviour lives below.
// The browser code is web/dashboard, bundled by make build into assets.
package dashboard

import (
	"context"
	"log/slog"
	"net/http"
	"slices"
	"sync"

	"github.com/paddock-dev/paddock/internal/apikey"
	"github.com/paddock-dev/paddock/internal/sandbox"
)

// Config is what the dashboard serves and whom it lets in.
type Config struct {
	Manager *sandbox.Manager
	Keys    *apikey.Store
	Logger  *slog.Logger
	// Admins are the names of keys that see and act on every sandbox of
	// the home (the CLI's too, whose owner is ""); every other key sees
	// the sandboxes it made, as in the API.
	Admins []string
	// Admit, when not nil, says why key may not create a sandbox now
	// (its cap), or nil.
	Admit func(key string) error
	// Allow, when not nil, reports whether key is within its request rate.
	Allow func(key string) bool
	// DefaultTemplate is the create form's first choice.
	DefaultTemplate string
}

// Dashboard is the http.Handler of /ui/.
type Dashboard struct {
	cfg      Config
	m        *sandbox.Manager
	log      *slog.Logger
	sessions sessions
	history  *history
	mux      *http.ServeMux
	// done is closed by Close: log streams and terminals end.
	done      chan struct{}
	closeOnce sync.Once
}

// New returns the dashboard cfg describes.
func New(cfg Config) *Dashboard {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	d := &Dashboard{cfg: cfg, m: cfg.Manager, log: cfg.Logger, mux: http.NewServeMux(), done: make(chan struct{})}
	d.sessions.log = cfg.Logger
	if cfg.Manager != nil && cfg.Manager.Home != "" {
		d.sessions.file = cfg.Manager.Home.DashboardSessions()
	}
	d.sessions.load()
	d.history = newHistory(cfg.Manager)
	d.routes()
	return d
}

// routes is every route of the dashboard, in one table. Routes marked
// open are served without a session; every other one answers the login
// page (401) until the browser has logged in.
func (d *Dashboard) routes() {
	for _, r := range []struct {
		pattern string
		open    bool
		h       func(http.ResponseWriter, *http.Request, caller)
	}{
		{"GET /ui/login", true, nil},
		{"POST /ui/login", true, nil},
		{"POST /ui/logout", false, d.logout},
		{"GET /ui/{$}", false, d.page},
		{"GET /ui/s/{name}", false, d.page},
		{"GET /ui/assets/{file}", false, d.asset},
		{"GET /ui/api/me", false, d.me},
		{"GET /ui/api/templates", false, d.templates},
		{"GET /ui/api/sandboxes", false, d.list},
		{"POST /ui/api/sandboxes", false, d.create},
		{"GET /ui/api/sandboxes/{name}", false, d.get},
		{"POST /ui/api/sandboxes/{name}/{action}", false, d.act},
		{"GET /ui/api/sandboxes/{name}/stats", false, d.stats},
		{"GET /ui/api/sandboxes/{name}/logs/{kind}", false, d.logs},
		{"GET /ui/api/sandboxes/{name}/terminal", false, d.terminal},
	} {
		switch {
		case r.pattern == "GET /ui/login":
			d.mux.HandleFunc(r.pattern, d.loginPage)
		case r.pattern == "POST /ui/login":
			d.mux.Handle(r.pattern, sameOrigin(http.HandlerFunc(d.login)))
		default:
			d.mux.Handle(r.pattern, d.authenticated(r.h))
		}
	}
	d.mux.Handle("/ui/", d.authenticated(func(w http.ResponseWriter, r *http.Request, _ caller) {
		http.Error(w, "the dashboard has no page "+r.URL.Path, http.StatusNotFound)
	}))
}

// ServeHTTP serves /ui/ and below, with headers that keep the pages from
// being framed and their scripts to the dashboard's own.
func (d *Dashboard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("X-Frame-Options", "DENY")
	d.mux.ServeHTTP(w, r)
}

// caller is the logged-in key a request comes from.
type caller struct {
	Key   string // the key's name, the owner of the sandboxes it makes
	Admin bool   // sees every sandbox (Config.Admins)
}

// sees reports whether c may see and act on the sandbox info describes.
func (c caller) sees(info sandbox.Info) bool {
	return c.Admin || info.Owner == c.Key
}

func (d *Dashboard) callerOf(key string) caller {
	return caller{Key: key, Admin: slices.Contains(d.cfg.Admins, key)}
}

// Close ends the open log streams and terminals, which would otherwise
// hold up a server's graceful shutdown (serve registers it with
// http.Server.RegisterOnShutdown).
func (d *Dashboard) Close() {
	d.closeOnce.Do(func() { close(d.done) })
}

// streamContext is r's context, ended also by Close.
func (d *Dashboard) streamContext(r *http.Request) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(r.Context())
	go func() {
		select {
		case <-d.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}
