package e2bapi

import (
	"fmt"
	"net/http"

	"github.com/paddock-dev/paddock/internal/dashboard"
)

// ui serves the web dashboard (package dashboard) at /ui/: it logs in
// with the API's keys, under the same caps and rates, and a key sees its
// own sandboxes, or every one for the keys in DashboardAdmins. The
// handler is built at the first request, when serve has set the server's
// settings.
func (s *Server) ui() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.dashOnce.Do(func() {
			s.dash = dashboard.New(dashboard.Config{
				Manager: s.m, Keys: s.keys, Logger: s.log, Admins: s.DashboardAdmins, DefaultTemplate: s.DefaultTemplate,
				Admit: func(key string) error {
					if n, at := s.atSandboxCap(key); at {
						return fmt.Errorf("key %q has %d sandboxes, its cap: remove one first", key, n)
					}
					return nil
				},
				Allow: func(key string) bool { return s.rates.allow(key, s.Limits) },
			})
		})
		if s.dash == nil { // closed before its first request
			http.Error(w, "paddock serve is stopping", http.StatusServiceUnavailable)
			return
		}
		s.dash.ServeHTTP(w, r)
	})
}

// CloseDashboard ends the dashboard's log streams and terminals, for a
// graceful shutdown (http.Server.RegisterOnShutdown).
func (s *Server) CloseDashboard() {
	s.dashOnce.Do(func() {}) // none is made after this
	if s.dash != nil {
		s.dash.Close()
	}
}
