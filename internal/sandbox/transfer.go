package sandbox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"

	"google.golang.org/grpc"

	agentv1 "github.com/paddock-dev/paddock/api/agent/v1"
)

// transferChunk is how much WriteFile sends at a time: the guest's own
// chunk size, well under gRPC's and ttrpc's 4 MiB message limits.
const transferChunk = 256 << 10

// FileReader is a file being read from a sandbox (Client.ReadFile).
type FileReader struct {
	// Size is the file's size when the guest opened it.
	Size   int64
	stream grpc.ServerStreamingClient[agentv1.ReadFileChunk]
	cancel context.CancelFunc
	buf    []byte // received and not yet read
	err    error  // the stream's end: io.EOF or its error
}

// ReadFile opens path in the sandbox as user ("" = the sandbox's user; a
// relative path is the user's home's) with the user's permissions. Its
// errors carry the agent's status codes: NotFound, PermissionDenied,
// FailedPrecondition for a folder. The bytes stream as they are read;
// Close the reader.
func (c *Client) ReadFile(ctx context.Context, path, user string) (*FileReader, error) {
	ctx, cancel := context.WithCancel(ctx)
	stream, err := c.Agent.ReadFile(ctx, &agentv1.ReadFileRequest{Path: path, User: user})
	if err != nil {
		cancel()
		return nil, err
	}
	first, err := stream.Recv()
	if err != nil {
		cancel()
		if errors.Is(err, io.EOF) {
			err = fmt.Errorf("read %s: the stream ended before the file was opened", path)
		}
		return nil, err
	}
	return &FileReader{Size: first.Size, stream: stream, cancel: cancel, buf: first.Data}, nil
}

func (r *FileReader) Read(p []byte) (int, error) {
	for len(r.buf) == 0 {
		if r.err != nil {
			return 0, r.err
		}
		m, err := r.stream.Recv()
		if err != nil {
			r.err = err
			continue
		}
		r.buf = m.Data
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	return n, nil
}

// WriteTo streams the rest of the file to w, a chunk at a time.
func (r *FileReader) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for {
		if len(r.buf) > 0 {
			n, err := w.Write(r.buf)
			total += int64(n)
			r.buf = r.buf[n:]
			if err != nil {
				return total, err
			}
		}
		if r.err != nil {
			if errors.Is(r.err, io.EOF) {
				return total, nil
			}
			return total, r.err
		}
		m, err := r.stream.Recv()
		if err != nil {
			r.err = err
			continue
		}
		r.buf = m.Data
	}
}

// Close ends the stream; the guest stops reading.
func (r *FileReader) Close() error {
	r.cancel()
	return nil
}

// WriteFile streams data into path in the sandbox as user ("" = the
// sandbox's user; a relative path is the user's home's), making its
// folders, and returns the file's absolute path. A new file gets mode (0:
// 0644). Errors carry the agent's status codes (PermissionDenied,
// FailedPrecondition for a folder, ResourceExhausted for a full disk); a
// failure to read data is wrapped in ErrInput.
func (c *Client) WriteFile(ctx context.Context, path, user string, mode fs.FileMode, data io.Reader) (string, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.Agent.WriteFile(ctx)
	if err != nil {
		return "", err
	}
	buf := make([]byte, transferChunk)
	chunk := &agentv1.WriteFileChunk{Path: path, User: user, Mode: uint32(mode.Perm())}
	for {
		n, rerr := io.ReadFull(data, buf)
		chunk.Data = buf[:n]
		if err := stream.Send(chunk); err != nil {
			break // the answer says why
		}
		if errors.Is(rerr, io.EOF) || errors.Is(rerr, io.ErrUnexpectedEOF) {
			break
		}
		if rerr != nil {
			return "", fmt.Errorf("%w: %w", ErrInput, rerr)
		}
		chunk = &agentv1.WriteFileChunk{}
	}
	resp, err := stream.CloseAndRecv()
	if err != nil {
		return "", err
	}
	return resp.Path, nil
}
