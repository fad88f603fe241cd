package mcpserver

import (
	"context"
	"fmt"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/paddock-dev/paddock/internal/sandbox"
)

// logCap bounds a log resource: its newest lines up to this size.
const logCap = 256 << 10

// logResources are the logs a sandbox serves as resources, by the last
// segment of their URI.
var logResources = []struct {
	kind        sandbox.LogKind
	mime, title string
	description string
}{
	{sandbox.ExecLog, "application/x-ndjson", "commands", "every command that ended in the sandbox, one JSON object a line: argv, user, cwd, exit_code, duration_ms"},
	{sandbox.ConsoleLog, "text/plain", "console", "the guest's serial console: the kernel's and init's messages"},
	{sandbox.NetLog, "application/x-ndjson", "network decisions", "every network decision, one JSON object a line: event, proto, dest, name, verdict (allow or deny) and the rule that made it"},
}

// logURI is a sandbox's log resource.
func logURI(name string, kind sandbox.LogKind) string {
	return "paddock://sandbox/" + name + "/logs/" + string(kind)
}

func (t *tools) registerResources(s *mcp.Server) {
	for _, r := range logResources {
		s.AddResourceTemplate(&mcp.ResourceTemplate{
			Name:        "sandbox-log-" + string(r.kind),
			Title:       "a sandbox's " + r.title,
			URITemplate: logURI("{name}", r.kind),
			MIMEType:    r.mime,
			Description: r.description + fmt.Sprintf(" (the newest %d KiB)", logCap>>10),
		}, t.readLog)
	}
}

// parseLogURI splits paddock://sandbox/NAME/logs/KIND.
func parseLogURI(uri string) (string, sandbox.LogKind, bool) {
	rest, ok := strings.CutPrefix(uri, "paddock://sandbox/")
	if !ok {
		return "", "", false
	}
	name, kind, ok := strings.Cut(rest, "/logs/")
	if !ok || name == "" || strings.Contains(kind, "/") {
		return "", "", false
	}
	for _, r := range logResources {
		if string(r.kind) == kind {
			return name, r.kind, true
		}
	}
	return "", "", false
}

func (t *tools) readLog(ctx context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
	uri := req.Params.URI
	name, kind, ok := parseLogURI(uri)
	if !ok {
		return nil, mcp.ResourceNotFoundError(uri)
	}
	info, err := t.sandbox(req.Extra, name)
	if err != nil {
		return nil, mcp.ResourceNotFoundError(uri)
	}
	files, err := t.m.LogFiles(info.Name, kind)
	if err != nil {
		return nil, err
	}
	var lines []string
	size := 0
	err = sandbox.TailLog(ctx, files, false, func(b []byte) {
		lines = append(lines, string(b))
		size += len(b)
		for size > logCap && len(lines) > 1 {
			size -= len(lines[0])
			lines = lines[1:]
		}
	})
	if err != nil {
		return nil, err
	}
	mime := "text/plain"
	for _, r := range logResources {
		if r.kind == kind {
			mime = r.mime
		}
	}
	return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{URI: uri, MIMEType: mime, Text: strings.Join(lines, "")}}}, nil
}
