package mcpserver

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	agentv1 "github.com/paddock-dev/paddock/api/agent/v1"
	"github.com/paddock-dev/paddock/internal/guest"
	"github.com/paddock-dev/paddock/internal/sandbox"
)

const (
	// readCap bounds what sandbox_read_file returns; writeCap what
	// sandbox_write_file takes.
	readCap  = 1 << 20
	writeCap = 4 << 20
	// maxListDepth bounds sandbox_list_files's depth, maxEntries its answer.
	maxListDepth = 5
	maxEntries   = 2000
)

type readIn struct {
	Name string `json:"name" jsonschema:"the sandbox's name"`
	Path string `json:"path" jsonschema:"the file in the guest: absolute, or relative to the user's home"`
}

type readOut struct {
	Path      string `json:"path"`
	Content   string `json:"content" jsonschema:"the file's text, or its bytes in base64 when encoding says so"`
	Encoding  string `json:"encoding" jsonschema:"utf-8, or base64 for a file that is not text"`
	Size      int64  `json:"size" jsonschema:"the file's size in bytes"`
	Truncated bool   `json:"truncated,omitempty"`
	Note      string `json:"note,omitempty"`
}

// requirePath gathers the errors of a file tool's common arguments.
func requirePath(name, path string) error {
	var errs []error
	if name == "" {
		errs = append(errs, errNoName)
	}
	if path == "" {
		errs = append(errs, errors.New("path is required: a file in the guest, absolute or relative to the user's home"))
	}
	return errors.Join(errs...)
}

func (t *tools) dial(extra *mcp.RequestExtra, name, path string) (*sandbox.Client, error) {
	if err := requirePath(name, path); err != nil {
		return nil, err
	}
	info, err := t.running(extra, name)
	if err != nil {
		return nil, err
	}
	return t.m.Dial(info.Name)
}

func (t *tools) readFile(ctx context.Context, req *mcp.CallToolRequest, in readIn) (*mcp.CallToolResult, readOut, error) {
	c, err := t.dial(req.Extra, in.Name, in.Path)
	if err != nil {
		return nil, readOut{}, err
	}
	defer c.Close()
	r, err := c.ReadFile(ctx, in.Path, "")
	if err != nil {
		return nil, readOut{}, fileError("read", in.Path, err)
	}
	defer r.Close()
	b, err := io.ReadAll(io.LimitReader(r, readCap+1))
	if err != nil {
		return nil, readOut{}, fileError("read", in.Path, err)
	}
	out := readOut{Path: in.Path, Size: r.Size, Encoding: "utf-8"}
	if len(b) > readCap {
		b, out.Truncated = b[:readCap], true
		out.Note = fmt.Sprintf("only the first %d KiB of %d bytes: read the rest with sandbox_exec (tail -c, sed -n, grep)", readCap>>10, r.Size)
	}
	out.Content = string(b)
	if !utf8.Valid(b) && !(out.Truncated && utf8.Valid(b[:len(b)-utf8.UTFMax])) {
		out.Content, out.Encoding = base64.StdEncoding.EncodeToString(b), "base64"
	}
	return nil, out, nil
}

type writeIn struct {
	Name     string `json:"name" jsonschema:"the sandbox's name"`
	Path     string `json:"path" jsonschema:"the file in the guest: absolute, or relative to the user's home; missing folders are made; an existing file is replaced"`
	Content  string `json:"content" jsonschema:"the file's whole content"`
	Encoding string `json:"encoding,omitempty" jsonschema:"utf-8 (the default) or base64 for bytes that are not text"`
	Mode     string `json:"mode,omitempty" jsonschema:"a new file's permissions in octal, e.g. 0755 for a script (default 0644)"`
}

type writeOut struct {
	Path  string `json:"path" jsonschema:"the file's absolute path in the guest"`
	Bytes int    `json:"bytes"`
}

// writeData checks a write's arguments, gathering every problem, and
// returns the bytes and mode to write.
func writeData(in writeIn) ([]byte, uint32, error) {
	errs := []error{requirePath(in.Name, in.Path)}
	data := []byte(in.Content)
	switch in.Encoding {
	case "", "utf-8", "utf8":
	case "base64":
		var err error
		if data, err = base64.StdEncoding.DecodeString(in.Content); err != nil {
			errs = append(errs, fmt.Errorf("content is not valid base64: %w", err))
		}
	default:
		errs = append(errs, fmt.Errorf("encoding %q: use utf-8 or base64", in.Encoding))
	}
	if len(data) > writeCap {
		errs = append(errs, fmt.Errorf("content is %d bytes, over %d MiB: write it in parts (append with sandbox_exec, e.g. cat part2 >> file)", len(data), writeCap>>20))
	}
	var mode uint64
	if in.Mode != "" {
		var err error
		if mode, err = strconv.ParseUint(in.Mode, 8, 32); err != nil || mode > 0o777 {
			errs = append(errs, fmt.Errorf("mode %q: give octal permissions such as 0644 or 0755", in.Mode))
		}
	}
	return data, uint32(mode), errors.Join(errs...)
}

func (t *tools) writeFile(ctx context.Context, req *mcp.CallToolRequest, in writeIn) (*mcp.CallToolResult, writeOut, error) {
	data, mode, err := writeData(in)
	if err != nil {
		return nil, writeOut{}, err
	}
	c, err := t.dial(req.Extra, in.Name, in.Path)
	if err != nil {
		return nil, writeOut{}, err
	}
	defer c.Close()
	p, err := c.WriteFile(ctx, in.Path, "", fs.FileMode(mode), bytes.NewReader(data))
	if err != nil {
		return nil, writeOut{}, fileError("write", in.Path, err)
	}
	return nil, writeOut{Path: p, Bytes: len(data)}, nil
}

// fileError says what a failed file operation means for the caller.
func fileError(op, path string, err error) error {
	st, ok := status.FromError(err)
	if !ok {
		return fmt.Errorf("%s %s: %w", op, path, err)
	}
	hint := ""
	switch st.Code() {
	case codes.NotFound:
		hint = ": no such file (sandbox_list_files shows what is there)"
	case codes.PermissionDenied:
		hint = ": permission denied to the sandbox's user (write under its home or /tmp)"
	case codes.FailedPrecondition:
		hint = ": a folder, not a file (sandbox_list_files lists it)"
	case codes.ResourceExhausted:
		hint = ": the sandbox's disk is full"
	}
	return fmt.Errorf("%s %s: %s%s", op, path, st.Message(), hint)
}

type listFilesIn struct {
	Name  string `json:"name" jsonschema:"the sandbox's name"`
	Path  string `json:"path,omitempty" jsonschema:"the folder in the guest: absolute, or relative to the user's home (default: the home)"`
	Depth int    `json:"depth,omitempty" jsonschema:"levels to descend: 1 (the default) lists the folder's own entries, at most 5"`
}

type fileEntry struct {
	Path        string    `json:"path"`
	Type        string    `json:"type" jsonschema:"file, dir or symlink"`
	Size        int64     `json:"size"`
	Permissions string    `json:"permissions"`
	Modified    time.Time `json:"modified"`
	Target      string    `json:"symlink_target,omitempty"`
}

type listFilesOut struct {
	Entries   []fileEntry `json:"entries"`
	Truncated bool        `json:"truncated,omitempty" jsonschema:"true when only the first 2000 entries are listed"`
}

func (t *tools) listFiles(ctx context.Context, req *mcp.CallToolRequest, in listFilesIn) (*mcp.CallToolResult, listFilesOut, error) {
	if in.Depth < 0 || in.Depth > maxListDepth {
		return nil, listFilesOut{}, fmt.Errorf("depth %d: give 1 to %d", in.Depth, maxListDepth)
	}
	path := in.Path
	if path == "" {
		path = "."
	}
	c, err := t.dial(req.Extra, in.Name, path)
	if err != nil {
		return nil, listFilesOut{}, err
	}
	defer c.Close()
	var stdout strings.Builder
	stderr := &capped{max: 4 << 10}
	argv := []string{guest.FilesVerb, "list", path, strconv.Itoa(max(in.Depth, 1))}
	exit, err := c.Run(ctx, &agentv1.ExecRequest{Argv: argv}, sandbox.Streams{Stdout: &stdout, Stderr: stderr}, nil)
	if err != nil {
		return nil, listFilesOut{}, fmt.Errorf("list %s: %w", path, err)
	}
	if exit.Code != 0 {
		hint := ""
		if exit.Code == guest.FilesNotFound {
			hint = " (no such folder)"
		}
		return nil, listFilesOut{}, fmt.Errorf("list %s: %s%s", path, strings.TrimSpace(exit.Error+" "+stderr.String()), hint)
	}
	return nil, parseEntries(stdout.String()), nil
}

// parseEntries reads the file tool's JSON lines, keeping maxEntries.
func parseEntries(s string) listFilesOut {
	out := listFilesOut{Entries: []fileEntry{}}
	dec := json.NewDecoder(strings.NewReader(s))
	for dec.More() {
		var e guest.FileEntry
		if dec.Decode(&e) != nil {
			break
		}
		if len(out.Entries) == maxEntries {
			out.Truncated = true
			break
		}
		out.Entries = append(out.Entries, fileEntry{Path: e.Path, Type: e.Type, Size: e.Size, Permissions: e.Permissions, Modified: time.Unix(0, e.ModifiedNanos).UTC(), Target: e.SymlinkTarget})
	}
	return out
}
