package e2bapi

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/paddock-dev/paddock/internal/apikey"
	"github.com/paddock-dev/paddock/internal/sandbox"
	"github.com/paddock-dev/paddock/internal/store"
)

// header adds a header to every request of a client.
type header struct{ name, value string }

func (h header) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set(h.name, h.value)
	return http.DefaultTransport.RoundTrip(r)
}

// TestMCPAuth: /mcp takes the API's keys as a bearer token or X-API-Key,
// answers 401 without a valid one, and binds a session to its key.
func TestMCPAuth(t *testing.T) {
	home := store.Home(t.TempDir())
	keys := apikey.Open(home)
	alice, _ := keys.Create("alice")
	bob, _ := keys.Create("bob")
	srv := httptest.NewServer(New(&sandbox.Manager{Home: home}, keys, slog.New(slog.DiscardHandler)))
	defer srv.Close()

	initialize := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`
	post := func(h http.Header, body string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest("POST", srv.URL+"/mcp", strings.NewReader(body))
		req.Header = h
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	for _, h := range []http.Header{{}, {"Authorization": {"Bearer pk_wrong"}}, {"X-Api-Key": {"pk_wrong"}}, {"Authorization": {"Basic " + alice}}} {
		if resp := post(h, initialize); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%v: %d, want 401", h, resp.StatusCode)
		}
	}
	resp := post(http.Header{"Authorization": {"Bearer " + alice}}, initialize)
	session := resp.Header.Get("Mcp-Session-Id")
	if resp.StatusCode != http.StatusOK || session == "" {
		t.Fatalf("initialize with alice's key: %d, session %q", resp.StatusCode, session)
	}
	list := `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`
	if resp := post(http.Header{"Authorization": {"Bearer " + bob}, "Mcp-Session-Id": {session}, "Mcp-Protocol-Version": {"2025-06-18"}}, list); resp.StatusCode != http.StatusForbidden {
		t.Errorf("bob's key on alice's session: %d, want 403", resp.StatusCode)
	}

	for _, h := range []header{{"Authorization", "Bearer " + alice}, {"X-API-Key", bob}} {
		client := mcp.NewClient(&mcp.Implementation{Name: "t"}, nil)
		cs, err := client.Connect(context.Background(), &mcp.StreamableClientTransport{Endpoint: srv.URL + "/mcp", HTTPClient: &http.Client{Transport: h}, MaxRetries: -1}, nil)
		if err != nil {
			t.Fatalf("%s: %v", h.name, err)
		}
		res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "sandbox_list"})
		if err != nil || res.IsError {
			t.Fatalf("%s: sandbox_list: %v %+v", h.name, err, res)
		}
		cs.Close()
	}
}
