package guest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	agentv1 "github.com/paddock-dev/paddock/api/agent/v1"
)

// testUID is the uid of the user "tester" that transfer tests add.
const testUID = 4242

// transferAgent is testAgent with a second user, tester (uid 4242), whose
// home is under the agent's root, and that root open to it.
func transferAgent(t *testing.T) (agentv1.TTRPCAgentClient, string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("ReadFile and WriteFile switch users: run as root")
	}
	c, a, _ := testAgent(t)
	root := a.Users.Root
	for d := root; d != "/tmp" && d != "/"; d = filepath.Dir(d) {
		os.Chmod(d, 0o755) // t.TempDir's folders are 0700
	}
	home := filepath.Join(root, "home", "tester")
	os.MkdirAll(home, 0o755)
	os.Chown(home, testUID, testUID)
	f, _ := os.OpenFile(filepath.Join(root, "etc", "passwd"), os.O_APPEND|os.O_WRONLY, 0)
	fmt.Fprintf(f, "tester:x:%d:%d::%s:/bin/sh\n", testUID, testUID, home)
	f.Close()
	return c, home
}

func writeFile(t *testing.T, c agentv1.TTRPCAgentClient, user, path string, data []byte) (*agentv1.WriteFileResponse, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ws, err := c.WriteFile(ctx)
	if err != nil {
		t.Fatal(err)
	}
	first := &agentv1.WriteFileChunk{Path: path, User: user}
	for {
		n := min(len(data), 100<<10)
		first.Data, data = data[:n], data[n:]
		if err := ws.Send(first); err != nil {
			break
		}
		if len(data) == 0 {
			break
		}
		first = &agentv1.WriteFileChunk{}
	}
	return ws.CloseAndRecv()
}

// readFile reads path as user with a window of 2 chunks, granting one more
// after each chunk it receives.
func readFile(t *testing.T, c agentv1.TTRPCAgentClient, user, path string) ([]byte, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	id := "read-" + filepath.Base(path)
	rs, err := c.ReadFile(ctx, &agentv1.ReadFileRequest{Path: path, User: user, Id: id, Window: 2})
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	for {
		m, err := rs.Recv()
		if errors.Is(err, io.EOF) {
			return out.Bytes(), nil
		}
		if err != nil {
			return nil, err
		}
		out.Write(m.Data)
		if _, err := c.AckOutput(ctx, &agentv1.AckOutputRequest{Id: id, Events: 1}); err != nil {
			t.Fatal(err)
		}
	}
}

func owner(t *testing.T, p string) (uint32, uint32) {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	return st.Uid, st.Gid
}

func TestTransferAsUser(t *testing.T) {
	c, home := transferAgent(t)
	data := bytes.Repeat([]byte("0123456789abcdef"), 50_000) // 800,000 bytes: 4 chunks
	resp, err := writeFile(t, c, "tester", "notes/deep/a.bin", data)
	if err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(home, "notes/deep/a.bin")
	if resp.Path != want || resp.Size != int64(len(data)) {
		t.Fatalf("written %q (%d bytes), want %q (%d)", resp.Path, resp.Size, want, len(data))
	}
	for _, p := range []string{want, filepath.Join(home, "notes"), filepath.Join(home, "notes/deep")} {
		if uid, gid := owner(t, p); uid != testUID || gid != testUID {
			t.Errorf("%s belongs to %d:%d, want %d:%d", p, uid, gid, testUID, testUID)
		}
	}
	back, err := readFile(t, c, "tester", want)
	if err != nil || !bytes.Equal(back, data) {
		t.Fatalf("read back %d bytes (%v), want %d", len(back), err, len(data))
	}

	// A file only root may read, and a folder only root may write in.
	secret := filepath.Join(filepath.Dir(home), "secret")
	os.WriteFile(secret, []byte("root only"), 0o600)
	if _, err := readFile(t, c, "tester", secret); status.Code(err) != codes.PermissionDenied {
		t.Errorf("tester read a 0600 root file: %v, want PermissionDenied", err)
	}
	if b, err := readFile(t, c, "me", secret); err != nil || string(b) != "root only" {
		t.Errorf("root read %q, %v", b, err)
	}
	if _, err := writeFile(t, c, "tester", filepath.Join(filepath.Dir(home), "x/y"), []byte("no")); status.Code(err) != codes.PermissionDenied {
		t.Errorf("tester wrote in a root folder: %v, want PermissionDenied", err)
	}

	// The agent's own threads keep root's credentials: what root writes
	// is root's.
	resp, err = writeFile(t, c, "me", filepath.Join(filepath.Dir(home), "mine"), []byte("root's"))
	if err != nil {
		t.Fatal(err)
	}
	if uid, _ := owner(t, resp.Path); uid != 0 {
		t.Errorf("root's file belongs to %d", uid)
	}
	f, err := os.Create(filepath.Join(filepath.Dir(home), "by-test"))
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if uid, _ := owner(t, f.Name()); uid != 0 {
		t.Errorf("the test's own file belongs to %d", uid)
	}
}

func TestTransferErrors(t *testing.T) {
	c, home := transferAgent(t)
	if _, err := readFile(t, c, "tester", "no/such/file"); status.Code(err) != codes.NotFound {
		t.Errorf("missing file: %v, want NotFound", err)
	}
	if _, err := readFile(t, c, "tester", home); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("a folder: %v, want FailedPrecondition", err)
	}
	if _, err := writeFile(t, c, "tester", home, []byte("x")); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("write a folder: %v, want FailedPrecondition", err)
	}
	if _, err := readFile(t, c, "nobody-here", "x"); status.Code(err) != codes.InvalidArgument {
		t.Errorf("unknown user: %v, want InvalidArgument", err)
	}
	// An empty file is one message with no data.
	if _, err := writeFile(t, c, "tester", "empty", nil); err != nil {
		t.Fatal(err)
	}
	if b, err := readFile(t, c, "tester", "empty"); err != nil || len(b) != 0 {
		t.Errorf("empty file: %q, %v", b, err)
	}
}

// TestReadFileRelease: a stream out of credit ends when it is released.
func TestReadFileRelease(t *testing.T) {
	c, home := transferAgent(t)
	os.WriteFile(filepath.Join(home, "big"), make([]byte, 4*fileChunk), 0o644)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	rs, err := c.ReadFile(ctx, &agentv1.ReadFileRequest{Path: "big", User: "tester", Id: "r", Window: 1})
	if err != nil {
		t.Fatal(err)
	}
	if m, err := rs.Recv(); err != nil || m.Size != 4*fileChunk {
		t.Fatalf("first chunk: %v, %v", m, err)
	}
	if _, err := c.Release(ctx, &agentv1.ReleaseRequest{Id: "r"}); err != nil {
		t.Fatal(err)
	}
	if _, err := rs.Recv(); status.Code(err) != codes.Canceled {
		t.Fatalf("after Release: %v, want Canceled", err)
	}
}
