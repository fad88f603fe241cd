package guest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	agentv1 "github.com/paddock-dev/paddock/api/agent/v1"
)

// ReadFile and WriteFile move whole files between the host and the guest
// without a process: the agent opens (or creates) the file as the user
// would, then copies the bytes itself. Under TCG a process start costs
// ~100 ms, which these calls avoid.

// fileChunk is the most a ReadFile message carries: well under ttrpc's
// 4 MiB message limit.
const fileChunk = 256 << 10

// asUser runs fn on an OS thread of its own whose supplementary groups,
// file-system gid and file-system uid are id's, so the kernel checks
// fn's file operations as the user's and files fn creates belong to the
// user. The thread stays locked and so exits with its goroutine: its
// credentials never reach another goroutine. An agent that is not root
// (a test host) runs fn with its own credentials.
func asUser(id Identity, fn func() error) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with fn
		if os.Geteuid() == 0 {
			if err := setThreadCredentials(id); err != nil {
				done <- err
				return
			}
		}
		done <- fn()
	}()
	return <-done
}

// setThreadCredentials sets the calling thread's groups, fsgid and fsuid.
// The kernel keeps each per thread; Go's syscall.Setgroups would change
// every thread of the agent, so SETGROUPS is called raw.
func setThreadCredentials(id Identity) error {
	groups := make([]uint32, len(id.Groups))
	copy(groups, id.Groups)
	var p unsafe.Pointer
	if len(groups) > 0 {
		p = unsafe.Pointer(&groups[0])
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETGROUPS, uintptr(len(groups)), uintptr(p), 0); e != 0 {
		return fmt.Errorf("set the groups of user %s: %w", id.Name, e)
	}
	runtime.KeepAlive(groups)
	// setfsgid and setfsuid answer the previous id, never an error: a
	// second call with an invalid id (-1) reads the id back.
	unix.Setfsgid(int(id.GID))
	if got, _ := unix.SetfsgidRetGid(-1); got != int(id.GID) {
		return fmt.Errorf("set the file-system gid %d of user %s: still %d", id.GID, id.Name, got)
	}
	unix.Setfsuid(int(id.UID))
	if got, _ := unix.SetfsuidRetUid(-1); got != int(id.UID) {
		return fmt.Errorf("set the file-system uid %d of user %s: still %d", id.UID, id.Name, got)
	}
	return nil
}

// userPath is p for the user: a relative path is the home's.
func userPath(p, home string) string {
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(home, p)
}

// fileStatus turns a file operation's error into the status the host maps
// (envd's 404, 403, 400 and 507).
func fileStatus(err error) error {
	var errno unix.Errno
	errors.As(err, &errno)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return status.Error(codes.NotFound, err.Error())
	case errors.Is(err, fs.ErrPermission), errno == unix.EROFS:
		return status.Error(codes.PermissionDenied, err.Error())
	case errno == unix.EISDIR, errno == unix.ENOTDIR:
		return status.Error(codes.FailedPrecondition, err.Error())
	case errno == unix.ENOSPC, errno == unix.EDQUOT:
		return status.Error(codes.ResourceExhausted, err.Error())
	}
	return status.Error(codes.Internal, err.Error())
}

// openRead opens p for reading as id; a folder is refused with EISDIR.
func openRead(id Identity, p string) (f *os.File, size int64, err error) {
	err = asUser(id, func() error {
		f, err = os.Open(p)
		if err != nil {
			return err
		}
		st, err := f.Stat()
		if err == nil && st.IsDir() {
			err = &fs.PathError{Op: "read", Path: p, Err: unix.EISDIR}
		}
		if err != nil {
			f.Close()
			return err
		}
		size = st.Size()
		return nil
	})
	return f, size, err
}

// createWrite makes p's folders (0755) and creates or truncates p (mode
// for a new file) as id; it answers the file and its path with symlinks
// resolved.
func createWrite(id Identity, p string, mode fs.FileMode) (f *os.File, real string, err error) {
	err = asUser(id, func() error {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		f, err = os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
		if err != nil {
			return err
		}
		if real, err = filepath.EvalSymlinks(p); err != nil {
			real = p
		}
		return nil
	})
	return f, real, err
}

// ReadFile streams a file to the host as the user (see the proto).
func (a *Agent) ReadFile(ctx context.Context, req *agentv1.ReadFileRequest, stream agentv1.TTRPCAgent_ReadFileServer) error {
	id, err := a.execIdentity(req.GetUser())
	if err != nil {
		return status.Error(codes.InvalidArgument, err.Error())
	}
	f, size, err := openRead(id, userPath(req.GetPath(), id.Home))
	if err != nil {
		return fileStatus(err)
	}
	defer f.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	credit := newOutputCredit(req.GetWindow())
	if req.GetId() != "" {
		if err := a.files.add(req.GetId(), credit, cancel); err != nil {
			return err
		}
		defer a.files.remove(req.GetId())
	}
	buf := make([]byte, fileChunk)
	for first := true; ; first = false {
		for !credit.available() {
			select {
			case <-credit.more:
			case <-ctx.Done():
				return status.Error(codes.Canceled, "read "+f.Name()+": released")
			}
		}
		n, rerr := io.ReadFull(f, buf)
		if rerr != nil && !errors.Is(rerr, io.EOF) && !errors.Is(rerr, io.ErrUnexpectedEOF) {
			return fileStatus(rerr)
		}
		if n > 0 || first {
			msg := &agentv1.ReadFileChunk{Data: buf[:n]}
			if first {
				msg.Size = size
			}
			credit.spend()
			if err := stream.Send(msg); err != nil {
				return err
			}
		}
		if rerr != nil {
			return nil
		}
	}
}

// WriteFile writes a file streamed from the host as the user (see the
// proto).
func (a *Agent) WriteFile(ctx context.Context, stream agentv1.TTRPCAgent_WriteFileServer) (*agentv1.WriteFileResponse, error) {
	first, err := stream.Recv()
	if err != nil {
		return nil, err
	}
	if first.GetPath() == "" {
		return nil, status.Error(codes.InvalidArgument, "write a file: no path given")
	}
	id, err := a.execIdentity(first.GetUser())
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	mode := fs.FileMode(first.GetMode()) & fs.ModePerm
	if mode == 0 {
		mode = 0o644
	}
	f, real, err := createWrite(id, userPath(first.GetPath(), id.Home), mode)
	if err != nil {
		return nil, fileStatus(err)
	}
	defer f.Close()
	var n int64
	for chunk := first; ; {
		if len(chunk.GetData()) > 0 {
			if _, err := f.Write(chunk.GetData()); err != nil {
				return nil, fileStatus(err)
			}
			n += int64(len(chunk.GetData()))
		}
		if chunk, err = stream.Recv(); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, err
		}
	}
	if err := f.Close(); err != nil {
		return nil, fileStatus(err)
	}
	return &agentv1.WriteFileResponse{Path: real, Size: n}, nil
}

// fileStreams are the ReadFile streams with an id, for AckOutput and
// Release.
//
// Invariant: every entry is a stream that is still sending.
type fileStreams struct {
	mu      sync.Mutex
	streams map[string]fileStream // guarded by mu
}

type fileStream struct {
	credit *outputCredit
	cancel context.CancelFunc
}

func (t *fileStreams) add(id string, c *outputCredit, cancel context.CancelFunc) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.streams[id]; ok {
		return status.Errorf(codes.AlreadyExists, "a file stream %q is already open", id)
	}
	if t.streams == nil {
		t.streams = map[string]fileStream{}
	}
	t.streams[id] = fileStream{credit: c, cancel: cancel}
	return nil
}

func (t *fileStreams) remove(id string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.streams, id)
}

// get returns the stream id and whether there is one.
func (t *fileStreams) get(id string) (fileStream, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s, ok := t.streams[id]
	return s, ok
}
