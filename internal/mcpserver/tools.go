package mcpserver

import (
	"github.com/google/jsonschema-go/jsonschema"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/paddock-dev/paddock/internal/netpolicy"
)

// register adds every tool, in one table of names and descriptions.
func (t *tools) register(s *mcp.Server) {
	destructive := true
	readOnly := &mcp.ToolAnnotations{ReadOnlyHint: true}
	mcp.AddTool(s, &mcp.Tool{Name: "sandbox_create", Description: "Create and boot a sandbox: a Linux microVM of its own with a network policy. " +
		"Returns its name, which every other tool takes. Boots in seconds (tiny) to tens of seconds (debian).",
		InputSchema: withEnums[createIn](map[string][]string{"policy": netpolicy.Presets})}, t.create)
	mcp.AddTool(s, &mcp.Tool{Name: "sandbox_list", Description: "List your sandboxes with their status, template and creation time.", Annotations: readOnly}, t.list)
	mcp.AddTool(s, &mcp.Tool{Name: "sandbox_exec", Description: "Run one shell command line in a running sandbox (sh -c) and return its stdout, stderr and exit code. " +
		"Each stream is capped at 64 KiB, with a note when cut. Commands do not share a shell: cd and variables do not persist, use cwd or chain with &&."}, t.exec)
	mcp.AddTool(s, &mcp.Tool{Name: "sandbox_read_file", Description: "Read a file from a running sandbox (up to 1 MiB; text as is, other bytes in base64).", Annotations: readOnly}, t.readFile)
	mcp.AddTool(s, &mcp.Tool{Name: "sandbox_write_file", Description: "Write a file in a running sandbox, making its folders; an existing file is replaced. " +
		"Up to 4 MiB (through paddock serve's /mcp a request is at most 1 MiB); larger files in parts.",
		InputSchema: withEnums[writeIn](map[string][]string{"encoding": {"utf-8", "base64"}})}, t.writeFile)
	mcp.AddTool(s, &mcp.Tool{Name: "sandbox_list_files", Description: "List a folder of a running sandbox: each entry's path, type, size, permissions and modification time.", Annotations: readOnly}, t.listFiles)
	mcp.AddTool(s, &mcp.Tool{Name: "sandbox_policy", Description: "Show a sandbox's network policy with the requests it recently denied, or add allow or deny rules. " +
		"Changes apply at once to new connections. Every connection the guest makes passes this policy on the host.",
		InputSchema: withEnums[policyIn](map[string][]string{"action": {"show", "allow", "deny"}})}, t.policy)
	mcp.AddTool(s, &mcp.Tool{Name: "sandbox_checkpoint", Description: "Save a running sandbox's full state (memory, processes, disk) as a checkpoint; the sandbox keeps running. " +
		"sandbox_fork starts copies of it."}, t.checkpoint)
	mcp.AddTool(s, &mcp.Tool{Name: "sandbox_fork", Description: "Start a new sandbox from a checkpoint, or from a running sandbox as it is now: its processes, files and memory continue in the copy. Returns the new sandbox's name."}, t.fork)
	mcp.AddTool(s, &mcp.Tool{Name: "sandbox_remove", Description: "Stop and delete a sandbox with everything in it.", Annotations: &mcp.ToolAnnotations{DestructiveHint: &destructive}}, t.remove)
}

// withEnums is T's inferred input schema with the allowed values of some
// string properties listed, so that clients offer them.
func withEnums[T any](enums map[string][]string) *jsonschema.Schema {
	s, err := jsonschema.For[T](nil)
	if err != nil {
		panic(err) // the argument types are this package's own
	}
	for prop, values := range enums {
		for _, v := range values {
			s.Properties[prop].Enum = append(s.Properties[prop].Enum, v)
		}
	}
	return s
}
