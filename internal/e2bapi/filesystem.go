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

	fspb "github.com/paddock-dev/paddock/api/envd/filesystem"
	"github.com/paddock-dev/paddock/api/envd/filesystem/filesystempbconnect"
	"github.com/paddock-dev/paddock/internal/guest"
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
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	c, stream, _, err := f.s.fileCommand(ctx, info.Name, execUser(h.Header()), false, append([]string{guest.FilesVerb}, args...)...)
	if err != nil {
		return nil, connect.NewError(connect.CodeUnavailable, err)
	}
	defer c.Close()
	stdout, stderr, exited, err := collect(stream)
	if err != nil {
		return nil, connect.NewError(connect.CodeUnavailable, err)
	}
	if code := exited.GetExitCode(); code != 0 {
		return nil, fileToolError(code, exited.GetError()+strings.TrimSpace(stderr))
	}
	return parseEntries(stdout)
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
