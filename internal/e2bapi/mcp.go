package e2bapi

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"github.com/modelcontextprotocol/go-sdk/auth"

	"github.com/paddock-dev/paddock/internal/mcpserver"
)

// keyName carries the verified key's name from mcp's check to the MCP
// transport's token verifier.
type keyName struct{}

// mcp serves MCP (streamable HTTP, package mcpserver) at /mcp with the
// API's keys, sent as X-API-Key or, as MCP clients do, Authorization:
// Bearer KEY. A key's sandboxes are its own, as the API's are, under the
// same caps. The handler is built at the first request, when serve has
// set the server's settings.
func (s *Server) mcp() http.Handler {
	var once sync.Once
	var h http.Handler
	build := func() {
		inner := mcpserver.NewHTTPHandler(mcpserver.Config{
			Manager: s.m, WorkspaceRoot: s.WorkspaceRoot, Logger: s.log, Admit: s.admitMCP,
		})
		// The transport binds each session to its key (TokenInfo.UserID).
		h = auth.RequireBearerToken(func(ctx context.Context, _ string, _ *http.Request) (*auth.TokenInfo, error) {
			name, _ := ctx.Value(keyName{}).(string)
			if name == "" {
				return nil, auth.ErrInvalidToken
			}
			return &auth.TokenInfo{UserID: name}, nil
		}, &auth.RequireBearerTokenOptions{AllowMissingExpiration: true})(inner)
	}
	// The routes' own check (authenticated: the key, its rate, the 1 MiB
	// body cap) reads X-API-Key: a bearer token, as MCP clients send the
	// key, is given to it there.
	check := s.authenticated(func(w http.ResponseWriter, r *http.Request, name string) {
		once.Do(build)
		r.Header.Set("Authorization", "Bearer "+r.Header.Get("X-API-Key"))
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), keyName{}, name)))
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f := strings.Fields(r.Header.Get("Authorization")); r.Header.Get("X-API-Key") == "" && len(f) == 2 && strings.EqualFold(f[0], "bearer") {
			r.Header.Set("X-API-Key", f[1])
		}
		check.ServeHTTP(w, r)
	})
}

// admitMCP refuses a create over MCP for a key at its cap of sandboxes.
func (s *Server) admitMCP(key string) error {
	if n, at := s.atSandboxCap(key); at {
		return fmt.Errorf("key %q has %d sandboxes, its cap: remove one with sandbox_remove first", key, n)
	}
	return nil
}
