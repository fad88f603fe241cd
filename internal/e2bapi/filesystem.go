package e2bapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	agentv1 "github.com/paddock-dev/paddock/api/agent/v1"
	fspb "github.com/paddock-dev/paddock/api/envd/filesystem"
	"github.com/paddock-dev/paddock/api/envd/filesystem/filesystempbconnect"
	"github.com/paddock-dev/paddock/internal/guest"
	"github.com/paddock-dev/paddock/internal/sandbox"
)

// filesystemService serves filesystem.Filesystem: stat, list, mkdir, move,
// remove and the watches (watch.go), each the agent's file tool
// (guest.FilesVerb) run as the caller's user.
type filesystemService struct {
	filesystempbconnect.UnimplementedFilesystemHandler
	s *Server
}

// run runs the file tool with args in the sandbox a request addresses and
// returns the entries it printed, or the error its exit code means.
func (f *filesystemService) run(ctx context.Context, h requestHeader, args ...string) ([]*fspb.EntryInfo, error) {
	info, err := f.s.sandboxFor(h.Header())
	if err != nil {
		return nil, err
	}
	c, err := f.s.m.Dial(info.Name)
	if err != nil {
		return nil, connect.NewError(connect.CodeUnavailable, err)
	}
	defer c.Close()
	var stdout strings.Builder
	stderr := &capped{max: stderrCap}
	req := &agentv1.ExecRequest{Argv: append([]string{guest.FilesVerb}, args...), User: execUser(h.Header())}
	exit, err := c.Run(ctx, req, sandbox.Streams{Stdout: &stdout, Stderr: stderr}, nil)
	if err != nil {
		return nil, connect.NewError(connect.CodeUnavailable, err)
	}
	if exit.Code != 0 {
		return nil, fileToolError(int32(exit.Code), exit.Error+strings.TrimSpace(stderr.String()))
	}
	return parseEntries(stdout.String())
}

// requestHeader is what the handlers need of a connect request.
type requestHeader interface{ Header() http.Header }

// fileToolError is the Connect error for the file tool's exit code.
func fileToolError(code int32, msg string) error {
	c := connect.CodeInternal
	switch code {
	case guest.FilesNotFound:
		c = connect.CodeNotFound
	case guest.FilesExists:
		c = connect.CodeAlreadyExists
	case guest.FilesPermission:
		c = connect.CodePermissionDenied
	case guest.FilesUsage:
		c = connect.CodeInvalidArgument
	}
	return connect.NewError(c, errors.New(msg))
}

func parseEntries(out string) ([]*fspb.EntryInfo, error) {
	var entries []*fspb.EntryInfo
	dec := json.NewDecoder(strings.NewReader(out))
	for dec.More() {
		var e guest.FileEntry
		if err := dec.Decode(&e); err != nil {
			return nil, connect.NewError(connect.CodeInternal, errors.New("the guest's file tool printed something else: "+err.Error()))
		}
		entries = append(entries, toEntryInfo(e))
	}
	return entries, nil
}

func toEntryInfo(e guest.FileEntry) *fspb.EntryInfo {
	info := &fspb.EntryInfo{
		Name: e.Name, Path: e.Path, Size: e.Size, Mode: e.Mode, Permissions: e.Permissions,
		Owner: e.Owner, Group: e.Group, ModifiedTime: timestamppb.New(time.Unix(0, e.ModifiedNanos)),
		Type: map[string]fspb.FileType{"file": fspb.FileType_FILE_TYPE_FILE, "dir": fspb.FileType_FILE_TYPE_DIRECTORY, "symlink": fspb.FileType_FILE_TYPE_SYMLINK}[e.Type],
	}
	if e.SymlinkTarget != "" {
		info.SymlinkTarget = &e.SymlinkTarget
	}
	return info
}

// one returns the single entry of a call that prints one.
func one(entries []*fspb.EntryInfo, err error) (*fspb.EntryInfo, error) {
	if err != nil {
		return nil, err
	}
	if len(entries) != 1 {
		return nil, connect.NewError(connect.CodeInternal, errors.New("the guest's file tool printed "+strconv.Itoa(len(entries))+" entries, want 1"))
	}
	return entries[0], nil
}

func (f *filesystemService) Stat(ctx context.Context, req *connect.Request[fspb.StatRequest]) (*connect.Response[fspb.StatResponse], error) {
	e, err := one(f.run(ctx, req, "stat", req.Msg.GetPath()))
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&fspb.StatResponse{Entry: e}), nil
}

func (f *filesystemService) ListDir(ctx context.Context, req *connect.Request[fspb.ListDirRequest]) (*connect.Response[fspb.ListDirResponse], error) {
	depth := max(req.Msg.GetDepth(), 1)
	entries, err := f.run(ctx, req, "list", req.Msg.GetPath(), strconv.Itoa(int(depth)))
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&fspb.ListDirResponse{Entries: entries}), nil
}

func (f *filesystemService) MakeDir(ctx context.Context, req *connect.Request[fspb.MakeDirRequest]) (*connect.Response[fspb.MakeDirResponse], error) {
	e, err := one(f.run(ctx, req, "mkdir", req.Msg.GetPath()))
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&fspb.MakeDirResponse{Entry: e}), nil
}

func (f *filesystemService) Move(ctx context.Context, req *connect.Request[fspb.MoveRequest]) (*connect.Response[fspb.MoveResponse], error) {
	e, err := one(f.run(ctx, req, "move", req.Msg.GetSource(), req.Msg.GetDestination()))
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&fspb.MoveResponse{Entry: e}), nil
}

func (f *filesystemService) Remove(ctx context.Context, req *connect.Request[fspb.RemoveRequest]) (*connect.Response[fspb.RemoveResponse], error) {
	if _, err := f.run(ctx, req, "remove", req.Msg.GetPath()); err != nil {
		return nil, err
	}
	return connect.NewResponse(&fspb.RemoveResponse{}), nil
}

// stderrCap bounds the error text kept from a file command.
const stderrCap = 4 << 10

// fileCommand starts argv (the file tool) in sandbox id as user and
// returns its event stream, past the Started event; cancel ends it.
func (s *Server) fileCommand(ctx context.Context, id, user string, argv ...string) (*sandbox.Client, agentv1.Agent_ExecClient, error) {
	c, err := s.m.Dial(id)
	if err != nil {
		return nil, nil, err
	}
	execID := "api-files-" + newAccessToken()[:12]
	stream, err := c.Agent.Exec(ctx, &agentv1.ExecRequest{Id: execID, Argv: argv, User: user})
	if err == nil {
		_, err = stream.Recv() // Started, or an error
	}
	if err != nil {
		c.Close()
		return nil, nil, err
	}
	return c, stream, nil
}

// capped keeps the first max bytes written to it (a command's error text).
type capped struct {
	strings.Builder
	max int
}

func (c *capped) Write(p []byte) (int, error) {
	if room := c.max - c.Len(); room > 0 {
		c.Builder.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}
