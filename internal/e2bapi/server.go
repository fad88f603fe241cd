// Package e2bapi serves paddock's sandboxes over E2B's HTTP API (the
// control-plane paths, fields, status codes and error bodies of E2B's
// public OpenAPI spec), so programs written for the E2B SDKs drive paddock
// by changing E2B_API_URL. It is a face over sandbox.Manager: it parses,
// authenticates and renders; the behaviour lives below.
package e2bapi

import (
	_ "embed"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"runtime"
	"strings"
	"sync"

	"github.com/paddock-dev/paddock/api/envd/filesystem/filesystempbconnect"
	"github.com/paddock-dev/paddock/api/envd/process/processpbconnect"
	"github.com/paddock-dev/paddock/internal/apikey"
	"github.com/paddock-dev/paddock/internal/dashboard"
	"github.com/paddock-dev/paddock/internal/sandbox"
	"github.com/paddock-dev/paddock/internal/warmpool"
)

// openapiDoc describes every route of routes (openapi.json).
//
//go:embed openapi.json
var openapiDoc []byte

// maxBody caps a request's JSON body.
const maxBody = 1 << 20

// Server is the HTTP handler of paddock serve.
type Server struct {
	m    *sandbox.Manager
	keys *apikey.Store
	log  *slog.Logger
	// DefaultTemplate serves E2B's default template name, "base".
	DefaultTemplate string
	// WorkspaceRoot, when set, is the host folder under which a create
	// may ask for a workspace (workspace.go).
	WorkspaceRoot string
	// Limits are per key.
	Limits Limits
	// Pool, when not nil, serves creates from idle clones (--warm).
	Pool *warmpool.Pool
	// DashboardAdmins name the keys that see every sandbox in the
	// dashboard (serve --dashboard-admin).
	DashboardAdmins []string
	dashOnce        sync.Once // makes dash at the first /ui/ request (dashboard.go)
	dash            *dashboard.Dashboard
	rates           limiters
	watchers        watchers
	boots           chan struct{} // a slot per create under way (createOrClaim)
	mux             *http.ServeMux
	// patterns are the routes that need a key, for the OpenAPI test.
	patterns []string
}

// New returns the API over m, authenticating with keys.
func New(m *sandbox.Manager, keys *apikey.Store, log *slog.Logger) *Server {
	s := &Server{m: m, keys: keys, log: log, DefaultTemplate: "debian", mux: http.NewServeMux(), boots: make(chan struct{}, max(2, runtime.NumCPU()))}
	s.routes()
	return s
}

// routes is every route of the API, in one table.
func (s *Server) routes() {
	for _, r := range []struct {
		pattern string
		h       func(w http.ResponseWriter, r *http.Request, key string)
	}{
		{"POST /sandboxes", s.create},
		{"POST /v2/sandboxes", s.create},
		{"GET /sandboxes", s.list},
		{"GET /v2/sandboxes", s.list},
		{"GET /sandboxes/{sandboxID}", s.get},
		{"DELETE /sandboxes/{sandboxID}", s.kill},
		{"POST /sandboxes/{sandboxID}/timeout", s.setTimeout},
		{"POST /sandboxes/{sandboxID}/refreshes", s.refresh},
		{"POST /sandboxes/{sandboxID}/pause", s.pause},
		{"PUT /sandboxes/{sandboxID}/network", s.network},
		{"POST /sandboxes/{sandboxID}/snapshots", s.snapshot},
		{"GET /snapshots", s.listSnapshots},
		{"DELETE /templates/{templateID}", s.deleteSnapshot},
		{"POST /sandboxes/{sandboxID}/resume", s.resume},
		{"POST /sandboxes/{sandboxID}/connect", s.resume},
		{"POST /v2/sandboxes/{sandboxID}/connect", s.resume},
		{"POST /sandboxes/{sandboxID}/fork", s.fork},
		{"GET /sandboxes/{sandboxID}/logs", s.logsV1},
		{"GET /v2/sandboxes/{sandboxID}/logs", s.logsV2},
		{"GET /sandboxes/{sandboxID}/metrics", s.metrics},
		{"GET /sandboxes/metrics", s.metricsOf},
		{"GET /templates", s.templates},
		{"GET /secrets", s.listSecrets},
		{"POST /secrets", s.setSecret},
		{"DELETE /secrets/{name}", s.deleteSecret},
		{"POST /sandboxes/{sandboxID}/secrets", s.bindSecrets},
	} {
		s.mux.Handle(r.pattern, s.authenticated(r.h))
		s.patterns = append(s.patterns, r.pattern)
	}
	// MCP for agents, with the same keys and ownership (mcp.go).
	s.mux.Handle("/mcp", s.mcp())
	// The web dashboard, logged in with the same keys (dashboard.go).
	s.mux.Handle("/ui/", s.ui())
	// A sandbox's own services (envd), checked by its access token.
	path, h := processpbconnect.NewProcessHandler(&processService{s: s})
	s.mux.Handle(path, http.MaxBytesHandler(h, maxBody))
	path, h = filesystempbconnect.NewFilesystemHandler(&filesystemService{s: s})
	s.mux.Handle(path, http.MaxBytesHandler(h, maxBody))
	s.mux.HandleFunc("GET /files", s.download)
	s.mux.HandleFunc("POST /files", s.upload)
	s.mux.HandleFunc("GET /openapi.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(openapiDoc)
	})
	s.mux.HandleFunc("GET /envs", s.envs)
	s.mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "paddock does not serve "+r.Method+" "+r.URL.Path+" (see docs/API.md)")
	})
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// authenticated checks the X-API-Key header and passes the key's name on.
func (s *Server) authenticated(h func(http.ResponseWriter, *http.Request, string)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := r.Header.Get("X-API-Key")
		name, ok := s.keys.Verify(key)
		if key == "" || !ok {
			writeError(w, http.StatusUnauthorized, "invalid API key: make one with paddock apikey create NAME and send it as X-API-Key")
			return
		}
		if !s.rates.allow(name, s.Limits) {
			tooMany(w, name, s.Limits)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		h(w, r, name)
	})
}

// apiError is E2B's error body.
type apiError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, apiError{Code: code, Message: msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// readJSON decodes the body into v; an empty body leaves v as it is. It
// answers the error itself and returns false.
func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(r.Body)
	err := dec.Decode(v)
	var tooBig *http.MaxBytesError
	switch {
	case err == nil || errors.Is(err, io.EOF):
		return true
	case errors.As(err, &tooBig):
		writeError(w, http.StatusRequestEntityTooLarge, "request body over 1 MiB")
	default:
		writeError(w, http.StatusBadRequest, "invalid JSON body: "+strings.TrimPrefix(err.Error(), "json: "))
	}
	return false
}
