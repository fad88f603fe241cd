package mcpserver

import (
	"net/http"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// sessionTimeout closes an HTTP session idle this long.
const sessionTimeout = 30 * time.Minute

// NewHTTPHandler serves the tools over MCP's streamable HTTP transport.
// Authentication is the caller's: every request must reach it with an
// auth.TokenInfo (auth.RequireBearerToken) whose UserID names the API key
// it acts for; cfg.PerKey is set.
func NewHTTPHandler(cfg Config) http.Handler {
	cfg.PerKey = true
	s := New(cfg)
	return mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, &mcp.StreamableHTTPOptions{
		Logger:         cfg.Logger,
		SessionTimeout: sessionTimeout,
	})
}
